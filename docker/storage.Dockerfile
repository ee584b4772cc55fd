# The metaos storage domain image: a storage domain serving the volume bind-mounted at /data,
# over HTTP on :8080 and over the bus: net.uds ([MC-NMF] sessions) on /run/metaos/storage.sock and
# HTTP on /run/metaos/storage.http.sock, for curl (bind-mount /run/metaos to reach them from the host).
# Build context: the directory docker/build-images.sh stages (app/ = dist/*.js, wsdl/,
# package.json, production node_modules, docker/healthcheck.mjs; empty/ = an empty directory);
# `bash docker/build-images.sh` builds it. Offline: --build-arg BASE_IMAGE=metaos/node-base:20
# (docker/build-base-image.sh); with a registry the default base is used unchanged.
# No RUN: the offline base has no shell, and nothing here needs one.
#   docker run -d -v /srv/vol:/data -v /srv/bus:/run/metaos -p 127.0.0.1:8080:8080 metaos/storage:dev
ARG BASE_IMAGE=node:20-bookworm-slim
FROM ${BASE_IMAGE}
ENV NODE_ENV=production
# The domain's V8 flags (service-domain/node-flags.ts, DOMAIN_NODE_FLAGS: young semi-spaces capped
# at 4 MB keep a domain clear of full GCs under large Writes). In NODE_OPTIONS, not the ENTRYPOINT,
# so `docker run -e NODE_OPTIONS=…`, a stack's or a pod's env, or the container driver under
# METAOS_DOMAIN_NODE_OPTIONS replaces it; k8s's `command:` keeps it.
ENV NODE_OPTIONS="--max-semi-space-size=4"
WORKDIR /app
# Owned by root, read-only to the domain's user.
COPY app/ /app/
# /run/metaos: where the bus sockets are created (bind-mount a host directory writable by uid 10001).
COPY --chown=10001:10001 empty/ /run/metaos/
# /data: the volume served (bind-mount a host directory writable by uid 10001).
COPY --chown=10001:10001 empty/ /data/
USER 10001:10001
EXPOSE 8080
# docker stop sends SIGTERM: the domain says Bye (when announced), drains in-flight calls (up to
# 10 s; give docker stop --time / stop_grace_period a little more), closes and exits 0.
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 CMD ["node", "/app/docker/healthcheck.mjs"]
ENTRYPOINT ["node", "/app/dist/cli/metaos.js", "storage"]
# --allow-insecure: plain HTTP on the container's own 0.0.0.0; who reaches it is decided by -p
# (publish on 127.0.0.1, as above) or the network it joins. Beyond one host use https:// with
# --tls-cert/--tls-key and --auth or --client-ca (docs/security.md).
CMD ["--root", "/data", "--listen", "http://0.0.0.0:8080", "--listen", "net.uds:/run/metaos/storage.sock", "--listen", "unix:/run/metaos/storage.http.sock", "--hosting", "container", "--allow-insecure"]
