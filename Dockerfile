# The moderation service for docker-compose; Redis runs in its own container.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md gunicorn.conf.py ./
COPY moderation ./moderation
COPY training ./training
RUN pip install --no-cache-dir . \
 && useradd --create-home --uid 10001 app \
 && mkdir -p /app/var /app/models /app/reports && chown -R app /app
USER app
ENV BIND=0.0.0.0:8000 MODELS_DIR=/app/models MODERATION_VAR_DIR=/app/var
EXPOSE 8000
# Train the first model if the models volume is empty, then serve.
CMD ["sh", "-c", "python -m training ensure-model && exec gunicorn -c gunicorn.conf.py moderation.wsgi:app"]
