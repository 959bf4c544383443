# Gradient Lab as one image: nginx in front of REPLICAS copies of the app, as `make serve` runs them.
#   docker build -t gradient-lab .
#   docker run -p 8501:8501 gradient-lab                 # one replica per core the container may use
#   docker run -p 8501:8501 -e REPLICAS=4 gradient-lab   # about 0.5 GB of memory per replica
FROM python:3.11-slim-bookworm

# nginx from Debian's packages; it runs as the app's user, with its files under artifacts/serve.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app

# The CPU build of torch first, at requirements.txt's pin: the default index would bring CUDA (gigabytes).
# The rest of requirements.txt then finds torch satisfied. Dependencies before the code: a code change
# rebuilds only the last layers.
COPY requirements.txt ./
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install -r requirements.txt

RUN useradd --create-home --uid 10001 app
COPY --chown=app:app . .
USER app

ENV REPLICAS=0
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
# nginx on 8501 for every interface; the replicas on 8502, 8503, ... on loopback only.
CMD ["python", "deploy/serve.py", "--port", "8501", "--listen", "0.0.0.0"]
