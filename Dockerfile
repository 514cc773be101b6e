# The moderation service for docker-compose; Redis runs in its own container.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md gunicorn.conf.py ./
COPY moderation ./moderation
COPY training ./training
# espeak-ng records the audio CAPTCHA's larger voice library (English and Spanish,
# several voices): without it the service falls back to the captcha package's one
# English voice, which a bot can match by template.
RUN apt-get update \
 && apt-get install --yes --no-install-recommends espeak-ng \
 && rm -rf /var/lib/apt/lists/*
RUN pip install --no-cache-dir . \
 && python -c "from moderation.captcha_audio import build_voice_library; \
print('voice library:', build_voice_library('/app/captcha-voices'))" \
 && useradd --create-home --uid 10001 app \
 && mkdir -p /app/var /app/models /app/reports && chown -R app /app
USER app
# Every path is set: installed with pip, the package's own folder is site-packages,
# where the app user may not write.
ENV BIND=0.0.0.0:8000 MODELS_DIR=/app/models REPORTS_DIR=/app/reports \
    MODERATION_VAR_DIR=/app/var CAPTCHA_VOICES_DIR=/app/captcha-voices
EXPOSE 8000
# Check the settings (gunicorn reads WEB_CONCURRENCY before any check of its own could
# name it), train the first model if the models volume is empty, then serve.
CMD ["sh", "-c", "python -m moderation.preflight && python -m training ensure-model && exec gunicorn -c gunicorn.conf.py moderation.wsgi:app"]
