# The heat-reconciler controller image: a builder stage that proves the set-up step
# (scripts/prepare.sh --build) on its base and compiles the binary, and a distroless runtime stage
# with only that binary and the CA bundle.
#
# The bases are build args, so this file builds against the public images below anywhere a
# registry is reachable, and against local images elsewhere: scripts/build-image.sh makes both
# offline (a debootstrapped Debian root plus the machine's Rust toolchain, and a distroless-like
# glibc root) and passes them with --build-arg. Keep RUST_IMAGE's version in step with the Rust
# the project is developed with: build-image.sh refuses a machine toolchain of another version.
ARG RUST_IMAGE=docker.io/library/rust:1.95.0-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/cc-debian12:nonroot

FROM ${RUST_IMAGE} AS builder
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
WORKDIR /src

# The set-up step on its own, before any source: this layer is reused until prepare.sh changes,
# and a prerequisite that prepare.sh fails to install fails the image build here or in the build
# below (the builder base need not have a C toolchain, protoc or CA certificates).
COPY scripts/prepare.sh scripts/prepare.sh
RUN bash scripts/prepare.sh --build

# What `cargo build` reads: the manifest, the lock file, the sources and the files src/ embeds
# with include_str! (config/*.json in src/schema.rs, kube/go.mod in src/local/kube_apiserver.rs,
# the chaos scenario's heat/templates/chaos-*.yaml; a new one must be added here and in
# .dockerignore). tests/, demo/ and heat/ are not needed to
# build the binary (demo/ and heat/ are found at run time, by the demo and the local Heat only).
COPY Cargo.toml Cargo.lock ./
COPY config/ config/
COPY kube/go.mod kube/go.mod
COPY heat/templates/ heat/templates/
COPY src/ src/

# The registry and target caches speed up rebuilds where the builder supports cache mounts
# (BuildKit, buildah >= 1.24); a cold cache builds the same. The binary is stripped and copied
# out of the cached target directory in the same step, since the cache is not part of the layer.
# An optional build secret `build-ca` (a PEM bundle: `--secret id=build-ca,src=FILE`) replaces
# the CA bundle cargo trusts, for networks whose HTTPS goes through an inspecting proxy; being a
# secret, it is in no layer, and the runtime stage still gets Debian's bundle.
RUN --mount=type=secret,id=build-ca \
    --mount=type=cache,id=heat-reconciler-cargo-registry,target=/usr/local/cargo/registry \
    --mount=type=cache,id=heat-reconciler-target,target=/src/target \
    if [ -s /run/secrets/build-ca ]; then export CARGO_HTTP_CAINFO=/run/secrets/build-ca; fi \
    && cargo build --release --locked --bin heat-reconciler \
    && install -D -m 0755 --strip target/release/heat-reconciler /out/heat-reconciler \
    && /out/heat-reconciler --version

FROM ${RUNTIME_IMAGE}
# ARGs before the first FROM are only in scope in a stage that declares them again.
ARG RUNTIME_IMAGE
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="heat-reconciler" \
      org.opencontainers.image.description="Turns ESI resource configuration in etcd into OpenStack Heat stacks" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.base.name="${RUNTIME_IMAGE}"

# No RUN in this stage: it works on a base without a shell (distroless).
COPY --from=builder /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=builder /out/heat-reconciler /usr/local/bin/heat-reconciler
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/heat-reconciler"]
