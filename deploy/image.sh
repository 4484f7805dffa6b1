#!/usr/bin/env bash
# Build the regblock image from scratch with buildah, pulling nothing from a
# registry: static binaries built here, the build machine's CA certificates
# and a passwd entry for the runtime user, the Kubernetes Corefile. The same
# image as deploy/Dockerfile, for machines without a Docker engine.
#
#   deploy/image.sh [NAME]        (default localhost/regblock:devel)
#
# VERSION stamps the binaries (default devel); BUILDAH is the buildah
# command with any global options (default: buildah). Run the image with
# podman, as deploy/README.md shows.
set -euo pipefail
name=${1:-localhost/regblock:devel}
version=${VERSION:-devel}
buildah=${BUILDAH:-buildah}
repo=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs

ldflags="-s -w -buildid= -X github.com/regblock/regblock/plugin/pkg/version.stamped=$version"
for cmd in regblockd regblock; do
  CGO_ENABLED=0 go build -C "$repo" -trimpath -ldflags "$ldflags" -o "$root/usr/local/bin/$cmd" "./cmd/$cmd"
done
mkdir -p "$root/etc/regblock" "$root/etc/ssl/certs" "$root/var/lib/regblock" "$root/var/log" "$work/own"
cp "$repo/deploy/kubernetes/base/Corefile" "$root/etc/regblock/Corefile"
cp /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/"
echo 'nonroot:x:65532:65532:nonroot:/nonexistent:/sbin/nologin' > "$root/etc/passwd"
echo 'nonroot:x:65532:' > "$root/etc/group"
chmod -R u=rwX,go=rX "$root" "$work/own"   # whatever the umask

# Binaries and configuration belong to root, so that the resolver cannot
# change them; only its lists, state and audit directories are its own.
ctr=$($buildah from scratch)
trap '$buildah rm "$ctr" >/dev/null 2>&1 || true; rm -rf "$work"' EXIT
$buildah copy --chown 0:0 "$ctr" "$root" / >/dev/null
for dir in /var/lib/regblock/lists /var/lib/regblock/state /var/log/regblock; do
  $buildah copy --chown 65532:65532 "$ctr" "$work/own" "$dir" >/dev/null
done
$buildah config --user 65532:65532 --port 1053/udp --port 1053/tcp --port 9153 \
  --entrypoint '["/usr/local/bin/regblockd"]' --cmd '-conf /etc/regblock/Corefile' \
  --label org.opencontainers.image.version="$version" "$ctr"
$buildah commit --quiet --timestamp 0 "$ctr" "$name"
