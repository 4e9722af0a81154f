# The application image. docker-compose.yml runs it as web (gunicorn), Celery worker and beat.
FROM python:3.11-slim

# MALLOC_ARENA_MAX=2: glibc gives each gunicorn thread its own malloc arena, and freed numpy
# buffers then stay mapped; with 2 arenas a web process's heap between requests stays within
# 215-280 MB over a 10-minute soak instead of wandering 170-390 MB (benchmarks/bench_soak.py)
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MALLOC_ARENA_MAX=2 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=recsite.settings.production
WORKDIR /app

# libgomp: OpenMP for implicit and the BLAS behind numpy/scipy (every other dependency is a wheel)
RUN apt-get update \
    && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

# torch's CPU build first, from PyTorch's own index: the project pins torch==2.13.0, which this
# build (2.13.0+cpu) satisfies, so the next step never pulls the CUDA build (several GB).
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu

# the dependencies (cached while pyproject.toml does not change), then the code
COPY pyproject.toml README.md ./
RUN pip install .
COPY . .

# static files for whitenoise (hashed, compressed); the settings need a key and a database URL
# to load, never to connect
RUN DJANGO_SECRET_KEY=collectstatic-only-not-a-secret-0123456789abcdefghijklmnop \
    DJANGO_ALLOWED_HOSTS=localhost DATABASE_URL=postgres://build@localhost/build \
    python manage.py collectstatic --noinput

# a non-root user owning only var/ (the model and beat volumes are created from these folders)
RUN useradd --create-home --uid 10001 recsite \
    && mkdir -p var/models var/beat \
    && chown -R recsite:recsite var
USER recsite

EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=10s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=5)"]
CMD ["gunicorn", "-c", "recsite/gunicorn.conf.py", "recsite.wsgi:application"]
