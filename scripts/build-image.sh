#!/usr/bin/env bash
# Builds the heat-reconciler container image with buildah, without a daemon and without pulling
# anything: the Dockerfile's two bases are made offline on this machine and passed as build args.
#
#   build-image.sh [--rebuild-bases] [--layers] [--no-cache] [--require-crdgen]
#                  [--output-archive FILE [--archive-format oci|docker]]
#
# Steps (each timed; a summary closes the run):
#   lint      scripts/lint-image.sh (hadolint) on the Dockerfile; any finding stops the build
#   tools     buildah and debootstrap from Debian's packages, if missing
#   bases     made only when missing (or with --rebuild-bases):
#             localhost/debian:bookworm-local          debootstrap --variant=minbase bookworm, from
#                                                     the mirror of this machine's apt sources
#             localhost/rust:<V>-bookworm-local        that root plus this machine's Rust toolchain
#                                                     (V is the version the Dockerfile pins; another
#                                                     machine toolchain is refused), laid out as the
#                                                     official rust image is
#             localhost/distroless-cc:bookworm-local   only what a glibc Rust binary needs: the files
#                                                     of libc6 and libgcc-s1 from that root, a
#                                                     'nonroot' user 65532, /tmp; user 65532
#   image     buildah bud of the Dockerfile with those bases, tagged
#             localhost/heat-reconciler:<version from Cargo.toml> and :latest. Its builder stage
#             runs `scripts/prepare.sh --build` on the bare Debian root, so a missing install step
#             in prepare.sh fails here. cargo there trusts this machine's CA bundle (given as the
#             build secret build-ca, which is in no layer), so crates.io can be reached through
#             an HTTPS-inspecting proxy that this machine trusts; the image gets Debian's bundle.
#   run       the image's binary run inside it (as its non-root user): `--version` must print the
#             Cargo.toml version, and `crdgen` must succeed if the binary has that subcommand
#             (if not, a loud warning; --require-crdgen makes that an error)
#
# The Dockerfile's cargo cache mounts (registry and target/, kept by buildah in
# ${TMPDIR:-/var/tmp}/buildah-cache) make a rebuild after a source change take minutes, not a
# quarter of an hour. --layers also keeps every intermediate layer, so an unchanged prepare.sh is
# not run again; but the vfs driver stores each layer as a full copy of the builder's root
# (~1.3 GB), so that costs ~2.5 GB per source change, until `buildah --storage-driver vfs rmi
# --prune`. --no-cache rebuilds every layer and empties the cache mounts; the bases are kept
# (--rebuild-bases).
# --output-archive FILE saves the image as an OCI archive (docker: a docker-archive for
# `docker load`).
#
# Must run as root (buildah mounts the images' roots). What it installs or keeps lives in buildah's
# storage (vfs driver, /var/lib/containers/storage) and under
# ${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}: the hadolint venv and image/ (logs, the
# temporary Debian root). Nothing is written into the project.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }

rebuild_bases=0
no_cache=0
layers=0
require_crdgen=0
archive=""
archive_format=oci
while [ $# -gt 0 ]; do
  case "$1" in
    --rebuild-bases) rebuild_bases=1 ;;
    --no-cache) no_cache=1 ;;
    --layers) layers=1 ;;
    --require-crdgen) require_crdgen=1 ;;
    --output-archive)
      [ $# -ge 2 ] || { echo "build-image: --output-archive needs a file" >&2; exit 2; }
      archive=$(realpath -m "$2")
      shift
      ;;
    --archive-format)
      case "${2:-}" in
        oci | docker) archive_format=$2 ;;
        *) echo "build-image: --archive-format takes oci or docker" >&2; exit 2 ;;
      esac
      shift
      ;;
    -h | --help) usage; exit 0 ;;
    *) echo "build-image: unknown argument: $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done

if [ "$(id -u)" != 0 ]; then
  echo "build-image: run as root (buildah mounts image roots; debootstrap needs root)" >&2
  exit 1
fi

home=${HEAT_RECONCILER_HOME:-$HOME/.cache/heat-reconciler}
work=$home/image
mkdir -p "$work"

# The Rust version is the one the Dockerfile's default builder image pins.
rust_version=$(sed -n 's|^ARG RUST_IMAGE=.*/rust:\([0-9][0-9.]*\)-bookworm$|\1|p' Dockerfile)
if [ -z "$rust_version" ]; then
  echo "build-image: no 'ARG RUST_IMAGE=.../rust:<version>-bookworm' in the Dockerfile" >&2
  exit 1
fi
# The version of the [package] section.
version=$(awk '/^\[/ { in_package = ($0 == "[package]") }
  in_package && /^version *=/ { gsub(/^version *= *"|".*$/, ""); print; exit }' Cargo.toml)
[ -n "$version" ] || { echo "build-image: no [package] version in Cargo.toml" >&2; exit 1; }
revision=$(git describe --always --dirty 2>/dev/null || echo unknown)

debian_image=localhost/debian:bookworm-local
rust_image=localhost/rust:$rust_version-bookworm-local
runtime_image=localhost/distroless-cc:bookworm-local
image=localhost/heat-reconciler
path_env=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

buildah=(buildah --storage-driver vfs)

# Working containers and the temporary Debian root, removed however the script ends.
containers=()
debian_root=""
cleanup() {
  local c
  for c in "${containers[@]}"; do
    "${buildah[@]}" rm "$c" >/dev/null 2>&1 || true
  done
  [ -z "$debian_root" ] || remove_root "$debian_root"
}
# A debootstrap that was stopped may leave /proc and /sys mounted in its root.
remove_root() {
  local m
  for m in proc sys dev/pts; do
    ! mountpoint -q "$1/$m" 2>/dev/null || umount -l "$1/$m" || true
  done
  rm -rf --one-file-system "$1"
}
trap cleanup EXIT

# new_container VAR FROM: a working container from the image FROM, its name in VAR; removed at
# exit unless committed. (Not called as $(...): the list must grow in this shell.)
new_container() {
  local new_container_id # a name no caller uses for VAR
  new_container_id=$("${buildah[@]}" from --pull=never "$2")
  containers+=("$new_container_id")
  printf -v "$1" '%s' "$new_container_id"
}
# commit CONTAINER IMAGE: commits and removes the working container.
commit() {
  "${buildah[@]}" commit --quiet --rm "$1" "$2" >/dev/null
  local kept=() c
  for c in "${containers[@]}"; do [ "$c" = "$1" ] || kept+=("$c"); done
  containers=("${kept[@]}")
  echo "build-image: committed $2 ($(image_size "$2"))"
}
image_exists() { "${buildah[@]}" inspect --type image "$1" >/dev/null 2>&1; }
image_size() { "${buildah[@]}" images --format '{{.Size}}' "$1" | head -n 1; }

phases=()
# timed NAME COMMAND...: runs the command and records how long it took.
timed() {
  local name=$1 start=$SECONDS
  shift
  echo "build-image: == $name" >&2
  "$@"
  phases+=("$(printf '%-46s %5ss' "$name" $((SECONDS - start)))")
}

install_tools() {
  local need=()
  buildah --version >/dev/null 2>&1 || need+=(buildah)
  debootstrap --version >/dev/null 2>&1 || need+=(debootstrap)
  if [ ${#need[@]} -gt 0 ]; then
    echo "build-image: installing ${need[*]}" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  fi
  buildah --version
}

# The Debian mirror (and security mirror) this machine's apt sources use for bookworm.
apt_site() {
  # shellcheck disable=SC2016 # $(SITE) and $(RELEASE) are apt's fields, not the shell's
  apt-get indextargets --no-release-info --format '$(SITE) $(RELEASE)' 2>/dev/null |
    awk -v release="$1" '$2 == release { print $1; exit }'
}

make_debian_root() {
  local mirror security
  mirror=$(apt_site bookworm)
  mirror=${mirror:-http://deb.debian.org/debian}
  security=$(apt_site bookworm-security)
  security=${security:-http://deb.debian.org/debian-security}
  debian_root=$work/debian-root
  remove_root "$debian_root"
  echo "build-image: debootstrap --variant=minbase bookworm $debian_root $mirror (log: $work/debootstrap.log)"
  if ! debootstrap --variant=minbase bookworm "$debian_root" "$mirror" >"$work/debootstrap.log" 2>&1; then
    tail -n 20 "$work/debootstrap.log" >&2
    echo "build-image: debootstrap failed; full log in $work/debootstrap.log" >&2
    return 1
  fi
  # Apt sources as Debian's own images have them; no host identity in the image.
  rm -f "$debian_root/etc/apt/sources.list" "$debian_root/etc/resolv.conf" "$debian_root/etc/hostname"
  cat >"$debian_root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
  rm -rf "$debian_root"/var/cache/apt/*.bin "$debian_root"/var/lib/apt/lists/*
  echo "build-image: Debian root: $(du -sh "$debian_root" | cut -f1)"
}

commit_debian_image() {
  local c mnt
  new_container c scratch
  mnt=$("${buildah[@]}" mount "$c")
  tar -C "$debian_root" -cf - . | tar -C "$mnt" -xf -
  "${buildah[@]}" umount "$c" >/dev/null
  remove_root "$debian_root"
  debian_root=""
  "${buildah[@]}" config --os linux --arch amd64 --env PATH=$path_env --cmd '["bash"]' \
    --label org.opencontainers.image.description="debootstrap --variant=minbase bookworm" "$c"
  commit "$c" "$debian_image"
}

make_rust_image() {
  local sysroot host found toolchain c mnt dest rustup_bin b
  if ! rustc --version >/dev/null 2>&1; then
    echo "build-image: the Rust builder base copies this machine's Rust $rust_version, but" \
      "rustc does not run here (install it with rustup)" >&2
    return 1
  fi
  sysroot=$(rustc --print sysroot)
  host=$(rustc -vV | sed -n 's/^host: //p')
  found=$("$sysroot/bin/rustc" --version)
  if [[ "$found" != "rustc $rust_version "* ]]; then
    echo "build-image: this machine's Rust is '$found' ($sysroot), but the Dockerfile pins" \
      "rust:$rust_version; install Rust $rust_version (rustup toolchain install $rust_version," \
      "rustup default $rust_version) or change RUST_IMAGE in the Dockerfile" >&2
    return 1
  fi
  toolchain=$rust_version-$host
  echo "build-image: $found from $sysroot as toolchain $toolchain (without its HTML docs)"
  new_container c "$debian_image"
  mnt=$("${buildah[@]}" mount "$c")
  dest=$mnt/usr/local/rustup/toolchains/$toolchain
  mkdir -p "$dest" "$mnt/usr/local/cargo/bin"
  tar -C "$sysroot" --exclude=./share/doc -cf - . | tar -C "$dest" -xf -
  sed -i '/^rust-docs-/d' "$dest/lib/rustlib/components"
  rm -f "$dest"/lib/rustlib/manifest-rust-docs-*
  # As rustup-init lays it out: rustup in CARGO_HOME/bin, each tool a link to it (the proxy), the
  # version as the default toolchain. Without rustup here, link the toolchain's tools directly.
  rustup_bin=$(command -v rustup || true)
  if [ -n "$rustup_bin" ]; then
    install -m 0755 "$(realpath "$rustup_bin")" "$mnt/usr/local/cargo/bin/rustup"
    for b in "$dest"/bin/*; do ln -s rustup "$mnt/usr/local/cargo/bin/${b##*/}"; done
    cat >"$mnt/usr/local/rustup/settings.toml" <<EOF
version = "12"
default_toolchain = "$toolchain"
profile = "minimal"
auto_self_update = "disable"

[overrides]
EOF
  else
    for b in "$dest"/bin/*; do
      ln -s "/usr/local/rustup/toolchains/$toolchain/bin/${b##*/}" "$mnt/usr/local/cargo/bin/${b##*/}"
    done
  fi
  chmod -R a+w "$mnt/usr/local/rustup" "$mnt/usr/local/cargo"
  "${buildah[@]}" umount "$c" >/dev/null
  "${buildah[@]}" config --env RUSTUP_HOME=/usr/local/rustup --env CARGO_HOME=/usr/local/cargo \
    --env PATH=/usr/local/cargo/bin:$path_env --env RUST_VERSION="$rust_version" \
    --label org.opencontainers.image.description="$debian_image plus $found" "$c"
  "${buildah[@]}" run --isolation chroot "$c" -- sh -c 'cargo --version && rustc --version'
  commit "$c" "$rust_image"
}

make_runtime_image() {
  local deb src c rt d target p packages
  local files=()
  new_container deb "$debian_image"
  src=$("${buildah[@]}" mount "$deb")
  new_container c scratch
  rt=$("${buildah[@]}" mount "$c")
  # The Debian root's merged-/usr links, so paths like /lib/x86_64-linux-gnu land where they do
  # there.
  for d in bin lib lib64 sbin; do
    if [ -L "$src/$d" ]; then
      target=$(readlink "$src/$d")
      mkdir -p "$rt/${target#/}"
      ln -s "$target" "$rt/$d"
    fi
  done
  # The files of libc6 and libgcc-s1, less documentation and iconv's gconv modules (a Rust binary
  # does not use iconv).
  while IFS= read -r p; do
    case "$p" in /usr/share/* | */gconv | */gconv/*) continue ;; esac
    if [ -L "$src$p" ] || [ -f "$src$p" ]; then files+=("${p#/}"); fi
  done < <(dpkg-query --admindir="$src/var/lib/dpkg" -L libc6 libgcc-s1)
  tar -C "$src" --no-recursion -cf - "${files[@]}" | tar -C "$rt" --keep-directory-symlink -xf -
  packages=$(dpkg-query --admindir="$src/var/lib/dpkg" -W -f '${Package} ${Version}, ' libc6 libgcc-s1)
  mkdir -p "$rt/etc" "$rt/usr/lib"
  cp "$src/usr/lib/os-release" "$rt/usr/lib/os-release"
  ln -s ../usr/lib/os-release "$rt/etc/os-release"
  cat >"$rt/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$rt/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rt/etc/nsswitch.conf"
  install -d -m 1777 "$rt/tmp"
  install -d -m 0700 "$rt/root"
  install -d -m 0700 -o 65532 -g 65532 "$rt/home/nonroot"
  "${buildah[@]}" umount "$c" "$deb" >/dev/null
  "${buildah[@]}" config --os linux --arch amd64 --env PATH=$path_env \
    --env SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt --user 65532:65532 \
    --workingdir /home/nonroot \
    --label org.opencontainers.image.description="glibc runtime from $debian_image: ${packages%, }" "$c"
  commit "$c" "$runtime_image"
}

build_image() {
  local host_ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt} layer_cache=false
  if [ "$layers" = 1 ]; then layer_cache=true; fi
  local args=(--isolation chroot --pull=never --layers="$layer_cache" --force-rm --format docker
    --build-arg RUST_IMAGE="$rust_image" --build-arg RUNTIME_IMAGE="$runtime_image"
    --build-arg VERSION="$version" --build-arg REVISION="$revision"
    --tag "$image:$version" --tag "$image:latest" --file Dockerfile)
  if [ "$no_cache" = 1 ]; then
    args+=(--no-cache)
    # The Dockerfile's cache mounts too (buildah keeps them in $TMPDIR/buildah-cache).
    rm -rf "${TMPDIR:-/var/tmp}"/buildah-cache/heat-reconciler-cargo-registry \
      "${TMPDIR:-/var/tmp}"/buildah-cache/heat-reconciler-target
  fi
  # cargo in the builder trusts what this machine trusts (e.g. the CA of an HTTPS-inspecting
  # proxy in front of crates.io); as a build secret the bundle is in no layer of any image.
  if [ -s "$host_ca" ]; then
    args+=(--secret "id=build-ca,src=$host_ca")
    echo "build-image: cargo in the builder uses this machine's CA bundle $host_ca (a build secret)"
  fi
  echo "build-image: buildah bud ${args[*]} . (log: $work/build.log)"
  "${buildah[@]}" bud "${args[@]}" . 2>&1 | tee "$work/build.log"
}

run_image() {
  local c out help crds
  new_container c "$image:$version"
  out=$("${buildah[@]}" run --isolation chroot "$c" -- /usr/local/bin/heat-reconciler --version)
  echo "build-image: heat-reconciler --version in the image: $out"
  if [ "$out" != "heat-reconciler $version" ]; then
    echo "build-image: expected 'heat-reconciler $version'" >&2
    return 1
  fi
  version_output=$out
  help=$("${buildah[@]}" run --isolation chroot "$c" -- /usr/local/bin/heat-reconciler --help)
  if grep -Eq '^ +crdgen( |$)' <<<"$help"; then
    crds=$work/crds.yaml
    "${buildah[@]}" run --isolation chroot "$c" -- /usr/local/bin/heat-reconciler crdgen >"$crds"
    if [ ! -s "$crds" ]; then
      echo "build-image: heat-reconciler crdgen printed nothing" >&2
      return 1
    fi
    crdgen_result="ran, $(wc -l <"$crds") lines in $crds"
    echo "build-image: heat-reconciler crdgen in the image: $crdgen_result"
  else
    crdgen_result="NOT RUN: this heat-reconciler has no crdgen subcommand"
    {
      echo "build-image: ############################################################"
      echo "build-image: WARNING: heat-reconciler --help lists no 'crdgen' subcommand;"
      echo "build-image: WARNING: the crdgen check was skipped (--require-crdgen fails here)."
      echo "build-image: ############################################################"
    } >&2
    [ "$require_crdgen" = 0 ] || return 1
  fi
}

check_user() {
  user=$("${buildah[@]}" inspect --type image --format '{{.OCIv1.Config.User}}' "$image:$version")
  case "${user%%:*}" in
    "" | 0 | root)
      echo "build-image: the image runs as '${user:-root}', not as a non-root user" >&2
      return 1
      ;;
  esac
}

save_archive() {
  local dest
  if [ "$archive_format" = docker ]; then
    dest=docker-archive:$archive:heat-reconciler:$version
  else
    dest=oci-archive:$archive:$image:$version
  fi
  mkdir -p "$(dirname "$archive")"
  rm -f "$archive"
  "${buildah[@]}" push --quiet "$image:$version" "$dest"
  echo "build-image: saved $dest ($(du -h "$archive" | cut -f1))"
}

timed lint bash scripts/lint-image.sh
timed tools install_tools

if [ "$rebuild_bases" = 1 ] || ! image_exists "$debian_image"; then
  timed "debootstrap" make_debian_root
  timed "base $debian_image" commit_debian_image
  rebuild_bases=1 # the other bases derive from it
else
  echo "build-image: reusing $debian_image (--rebuild-bases remakes it)"
fi
if [ "$rebuild_bases" = 1 ] || ! image_exists "$rust_image"; then
  timed "base $rust_image" make_rust_image
else
  echo "build-image: reusing $rust_image"
fi
if [ "$rebuild_bases" = 1 ] || ! image_exists "$runtime_image"; then
  timed "base $runtime_image" make_runtime_image
else
  echo "build-image: reusing $runtime_image"
fi

timed "image $image:$version" build_image
version_output=""
crdgen_result=""
timed "run" run_image
user=""
check_user
[ -z "$archive" ] || timed "archive" save_archive

echo
echo "build-image: done"
printf '  %s\n' "${phases[@]}"
echo "  image:        $image:$version, $image:latest ($(image_size "$image:$version"))"
echo "  runtime base: $runtime_image ($(image_size "$runtime_image"))"
echo "  builder base: $rust_image ($(image_size "$rust_image"))"
echo "  user:         $user"
echo "  --version:    $version_output"
echo "  crdgen:       $crdgen_result"
echo "  storage:      $(du -sh /var/lib/containers/storage 2>/dev/null | cut -f1) in buildah's vfs store," \
  "$(du -sh "${TMPDIR:-/var/tmp}/buildah-cache" 2>/dev/null | cut -f1) in its cache mounts"
