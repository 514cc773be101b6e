"""Serve one comment in a fresh interpreter and report what it imported."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

WORKER = textwrap.dedent("""
    import json, sys
    from moderation import create_app
    from moderation.scoring import get_scorer

    app = create_app({"TESTING": True, "REDIS_URL": sys.argv[1], "MODELS_DIR": sys.argv[2],
                      "SECRET_KEY": "k", "IP_HASH_KEY": "k", "MIN_FILL_SECONDS": 0},
                     challenge_text=lambda length: "ABCDE")
    client = app.test_client()
    challenge = client.post("/api/v1/challenges").get_json()
    posted = client.post("/api/v1/articles/" + sys.argv[3] + "/comments", json={
        "body": "Check out my channel http://bit.ly/x for free gift cards!!!",
        "challenge_id": challenge["id"], "captcha_answer": "ABCDE"})
    with app.app_context():
        score = get_scorer().score("I remember this song from my cousin's wedding")
    heavy = sorted({name.split(".")[0] for name in sys.modules} & {"sklearn", "scipy", "skops"})
    print(json.dumps({"status": posted.status_code, "verdict": score.verdict,
                      "explained": len(score.explanation), "heavy": heavy}))
""")


def serve_one_comment(redis_url: str, models_dir, tmp_path) -> dict:
    """Build the app in a fresh interpreter, post a comment, score one; what it imported."""
    from moderation.articles import default_article

    env = {**os.environ, "MODERATION_VAR_DIR": str(tmp_path / "var")}
    done = subprocess.run(
        [sys.executable, "-c", WORKER, redis_url, str(models_dir), default_article().slug],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])
