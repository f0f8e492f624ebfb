# One image for every service of the project; the command picks the service.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY schemas ./schemas
COPY platform ./platform
COPY services ./services
COPY app ./app
COPY tools ./tools
RUN pip install --no-cache-dir .
ENV BACKORDERS_DATA_DIR=/data
VOLUME ["/data"]
ENTRYPOINT ["backorders"]
CMD ["run"]
