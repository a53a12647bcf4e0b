# synthstream: the producer (`synthstream`) and the reference ingest endpoint
# (`synthstream-ingest`) in one small image.
FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY producer ./producer
COPY sinks ./sinks
COPY ingest ./ingest
COPY profiles ./profiles
# Wheels only: no compiler in either stage, nothing of the build in the final image. Then
# what the runtime never loads goes: test suites, C headers, Cython sources and pyarrow's
# Flight libraries (about 50 MB); the imports below prove that the rest still loads.
RUN pip install --no-cache-dir --only-binary=:all: --prefix=/install .
WORKDIR /install/lib/python3.11/site-packages
RUN rm -rf pyarrow/tests pyarrow/include pyarrow/src numpy/*/tests numpy/tests \
           numpy/_core/include numpy/f2py/src \
           pyarrow/libarrow_flight.so* pyarrow/_flight*.so pyarrow/libarrow_python_flight.so* \
           pyarrow/flight.py \
 && find . \( -name "*.pyx" -o -name "*.pxd" -o -name "*.pxi" \) -delete \
 && PYTHONPATH=. python -c "import pyarrow.parquet, pyarrow.csv, pyarrow.compute, \
pyarrow.dataset, pyarrow.fs, numpy, producer.cli, sinks.kafka, sinks.kinesis, sinks.http, \
sinks.file, sinks.s3, sinks.postgres, aiokafka, aioboto3, aiohttp, httpx, psycopg, ingest.app"

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="synthstream" \
      org.opencontainers.image.description="Realistic synthetic streaming data: live and backfill, to files, HTTP, Kafka and Kinesis" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN useradd --create-home --uid 10001 synthstream
COPY --from=build /install /usr/local
USER 10001
WORKDIR /home/synthstream
ENV SYNTHSTREAM_PROFILE=development \
    SYNTHSTREAM_METRICS__HOST=0.0.0.0 \
    SYNTHSTREAM_METRICS__PORT=9108 \
    PYTHONUNBUFFERED=1
EXPOSE 9108
HEALTHCHECK --interval=10s --timeout=3s --start-period=15s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=2)"]
ENTRYPOINT ["synthstream"]
CMD ["run"]
