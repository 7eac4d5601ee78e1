# tidegate: runs KrakenD configurations. Mount the config folder as with KrakenD:
#   docker run -v "$PWD:/etc/krakend" -p 8080:8080 tidegate          (serves krakend.json)
#   docker run -v "$PWD:/etc/krakend" -p 8080:8080 tidegate watch    (hot reload on save)
#   docker run -v "$PWD:/etc/krakend" tidegate check -c krakend.json
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# Only what the package build needs (pyproject reads README.md).
COPY pyproject.toml README.md /src/
COPY tidegate /src/tidegate
RUN pip install /src && rm -rf /src

COPY docker/entrypoint.sh /usr/local/bin/tidegate-entrypoint
RUN chmod 0755 /usr/local/bin/tidegate-entrypoint \
    && useradd --system --uid 1000 --no-create-home --shell /usr/sbin/nologin krakend

# As KrakenD's image: unprivileged, config folder as the working directory.
USER krakend
WORKDIR /etc/krakend
EXPOSE 8080

ENTRYPOINT ["/usr/local/bin/tidegate-entrypoint"]
CMD ["run", "-c", "krakend.json"]
