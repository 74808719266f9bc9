# Sourced by test.sh: makes a Docker engine answer for the docker sandbox tests, starting
# Debian's dockerd on a private socket when none runs (see ../shared/TOOLCHAIN.md), and builds
# the tiny local image the tests use from busybox (nothing is pulled). Sets DOCKER_HOST and, when
# it started the daemon, FACTORY_DOCKERD_PID so the caller can stop it.

if ! declare -F as_root >/dev/null; then
  as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
      echo "need root (or sudo) to run: $*" >&2; return 1; fi
  }
fi

factory_docker_engine() {
  if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker >/dev/null 2>&1; then
    echo "docker: not installed; the docker sandbox tests will skip"
    return 0
  fi
  local root=/tmp/factory-docker
  if ! docker info >/dev/null 2>&1; then
    export DOCKER_HOST="unix://$root/docker.sock"
    if ! docker info >/dev/null 2>&1; then
      as_root mkdir -p "$root"
      as_root sh -c "nohup dockerd --host unix://$root/docker.sock --data-root $root/data \
        --exec-root $root/exec --pidfile $root/docker.pid --iptables=false --bridge=none \
        >$root/dockerd.log 2>&1 &"
      local i
      for i in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
      done
      if ! docker info >/dev/null 2>&1; then
        echo "docker: dockerd did not come up (see $root/dockerd.log); the docker sandbox tests will skip"
        return 0
      fi
      FACTORY_DOCKERD_PID="$(cat "$root/docker.pid" 2>/dev/null || true)"
      export FACTORY_DOCKERD_PID
    fi
  fi
  # The applets the tests' commands use; the image is made again when this list changes.
  local applets="sh cat echo touch tail cut tr yes head sleep grep ls true false test wget sed printf wc mkdir rm"
  local version
  version="$(printf '%s' "$applets" | sha256sum | cut -c1-12)"
  if [ "$(docker image inspect -f '{{index .Config.Labels "factory.applets"}}' factory-sandbox:test 2>/dev/null)" != "$version" ]; then
    local rootfs
    rootfs="$(mktemp -d)"
    mkdir -p "$rootfs/bin" "$rootfs/tmp" "$rootfs/workspace" "$rootfs/etc" "$rootfs/proc" "$rootfs/dev"
    cp /bin/busybox "$rootfs/bin/busybox"
    local applet
    for applet in $applets; do
      ln -s busybox "$rootfs/bin/$applet"
    done
    tar -C "$rootfs" -c . | docker import --change "LABEL factory.applets=$version" - factory-sandbox:test >/dev/null
    rm -rf "$rootfs"
  fi
  echo "docker: engine at ${DOCKER_HOST:-default socket}, image factory-sandbox:test ready"
}

factory_docker_stop() {
  if [ -n "${FACTORY_DOCKERD_PID:-}" ]; then
    as_root kill "$FACTORY_DOCKERD_PID" 2>/dev/null || true
  fi
}
