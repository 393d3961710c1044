# The image the Helm chart runs: `tenantpulse exporter`, `tenantpulse sidecar` and `tenantpulse gateway`
# (one image, three commands).
#   docker build -t ghcr.io/tenantpulse/tenantpulse:0.1.0 .
#   docker build --build-arg EXTRAS=jaeger -t ...   # with optional extras, e.g. Jaeger Thrift for Jaeger < 1.35
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed numeric uid/gid: the chart's runAsNonRoot check needs a numeric USER, and runAsUser matches it.
RUN groupadd --system --gid 10001 tenantpulse \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin tenantpulse

# Comma-separated extras from pyproject.toml; empty installs the package alone.
ARG EXTRAS=""

WORKDIR /src
COPY pyproject.toml README.md ./
COPY tenantpulse ./tenantpulse
COPY exporters ./exporters
COPY alert_rules ./alert_rules
COPY grafana ./grafana
COPY otel ./otel
COPY anomaly_sidecar ./anomaly_sidecar
COPY security ./security
COPY gateway ./gateway
RUN pip install ".${EXTRAS:+[$EXTRAS]}" && rm -rf /src

WORKDIR /var/lib/tenantpulse
USER 10001:10001
EXPOSE 8080 9108 9110
ENTRYPOINT ["tenantpulse"]
CMD ["--help"]
