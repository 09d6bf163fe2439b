#!/usr/bin/python3
"""The Kubernetes manifests (deploy/kubernetes) and the image recipe (deploy/container),
checked without a cluster:

- every manifest parses, each object has apiVersion, kind and a name, in namespace rollout;
- the config each ConfigMap embeds (kustomization.yaml's configMapGenerator) passes the
  daemon's --check-config, and is mounted where the container's --config points;
- ports match: the pool's listen and metrics ports are the container's `zmq` and `metrics`
  ports and the Service's; rolloutd's dns: entry names the headless Service and its port;
- the Service (headless) selects the StatefulSet's pods, serviceName names it, the
  PodDisruptionBudget selects them too; readiness and liveness probes GET /healthz on the
  metrics port;
- the pool's resource requests equal its limits and cover its profiles' limits
  (max x memory_mb, max x cpu_percent); it is not privileged, drops ALL and justifies
  every capability it adds in a comment;
- the Containerfile's runtime packages provide every library the built daemons load;
- `kubectl kustomize` (offline) renders the whole set, when kubectl is installed.
Usage: k8s_check.py SOURCE_DIR BUILD_DIR
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import yaml

SRC, BUILD = sys.argv[1], sys.argv[2]
K8S = os.path.join(SRC, "deploy/kubernetes")
failures = []


def check(cond, what):
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
    return cond


def load(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def port_of(endpoint):
    return int(endpoint.rsplit(":", 1)[1])


def main():
    kust = load(os.path.join(K8S, "kustomization.yaml"))[0]
    objs = []
    for r in kust["resources"]:
        docs = load(os.path.join(K8S, r))
        for d in docs:
            ok = all(k in d for k in ("apiVersion", "kind", "metadata")) and d["metadata"].get("name")
            check(ok, "%s: %s/%s parses, has apiVersion, kind and name" % (r, d.get("kind"), d.get("metadata", {}).get("name")))
            if d.get("kind") != "Namespace":
                check(d["metadata"].get("namespace", kust.get("namespace")) == "rollout",
                      "%s/%s is in namespace rollout" % (d["kind"], d["metadata"]["name"]))
            objs.append(d)
    by = {(o["kind"], o["metadata"]["name"]): o for o in objs}

    # ConfigMaps from the generator: each embedded config passes --check-config.
    cms = {}
    exe = {"pool": os.path.join(BUILD, "pool/rollout-pool"), "rolloutd": os.path.join(BUILD, "coordinator/rolloutd")}
    for g in kust.get("configMapGenerator", []):
        data = {}
        for f in g.get("files", []):
            with open(os.path.join(K8S, f)) as fh:
                data[os.path.basename(f)] = fh.read()
        cms[g["name"]] = data
        for key, text in data.items():
            cfg = yaml.safe_load(text)
            section = "pool" if "pool" in cfg else "rolloutd"
            with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as t:
                t.write(text)
            r = subprocess.run([exe[section], "--check-config", t.name], capture_output=True, text=True)
            os.unlink(t.name)
            check(r.returncode == 0, "ConfigMap %s key %s passes %s --check-config %s"
                  % (g["name"], key, os.path.basename(exe[section]), (r.stdout + r.stderr).strip()))
    pool_cfg = yaml.safe_load(cms["rollout-pool-config"]["pool.yaml"])["pool"]
    rd_cfg = yaml.safe_load(cms["rolloutd-config"]["rolloutd.yaml"])["rolloutd"]

    sts = by[("StatefulSet", "rollout-pool")]
    svc = by[("Service", "rollout-pool")]
    ds = by[("DaemonSet", "rolloutd")]
    pdb = by[("PodDisruptionBudget", "rollout-pool")]

    def container(workload):
        return workload["spec"]["template"]["spec"]["containers"][0]

    def ports(c):
        return {p["name"]: p["containerPort"] for p in c.get("ports", [])}

    def config_mount(workload, cm_name):
        """The path the container's --config names must be the ConfigMap's file."""
        spec = workload["spec"]["template"]["spec"]
        c = container(workload)
        argv = c.get("command", []) + c.get("args", [])
        cfg_path = argv[argv.index("--config") + 1]
        vol = [v for v in spec["volumes"] if v.get("configMap", {}).get("name") == cm_name]
        if not check(len(vol) == 1, "%s mounts ConfigMap %s" % (workload["metadata"]["name"], cm_name)):
            return
        m = [m for m in c["volumeMounts"] if m["name"] == vol[0]["name"]][0]
        items = {i["key"]: i["path"] for i in vol[0]["configMap"].get("items", [])}
        files = {os.path.join(m["mountPath"], items.get(k, k)) for k in cms[cm_name]}
        check(cfg_path in files, "%s --config %s is a file of ConfigMap %s (%s)"
              % (workload["metadata"]["name"], cfg_path, cm_name, ", ".join(sorted(files))))

    config_mount(sts, "rollout-pool-config")
    config_mount(ds, "rolloutd-config")

    # Ports.
    pc = container(sts)
    pp = ports(pc)
    check(pp.get("zmq") == port_of(pool_cfg["listen"]),
          "pool container port zmq %s = pool.listen port %s" % (pp.get("zmq"), port_of(pool_cfg["listen"])))
    check(pp.get("metrics") == port_of(pool_cfg["metrics"]),
          "pool container port metrics %s = pool.metrics port %s" % (pp.get("metrics"), port_of(pool_cfg["metrics"])))
    sp = {p["name"]: p for p in svc["spec"]["ports"]}
    for name in ("zmq", "metrics"):
        tp = sp.get(name, {}).get("targetPort")
        tp = pp.get(tp, tp)
        check(tp == pp.get(name), "Service port %s targets the container's %s port (%s)" % (name, name, tp))
    dns = [p["dns"] for p in rd_cfg["pools"] if "dns" in p]
    want = "%s.%s.svc.cluster.local:%d" % (svc["metadata"]["name"], svc["metadata"]["namespace"], sp["zmq"]["port"])
    check(dns == [want], "rolloutd's dns: entry %s names the headless Service (%s)" % (dns, want))
    dp = ports(container(ds))
    check(dp.get("metrics") == port_of(rd_cfg["metrics"]),
          "rolloutd container port metrics %s = rolloutd.metrics port %s" % (dp.get("metrics"), port_of(rd_cfg["metrics"])))
    for w, cfgp in ((sts, pool_cfg), (ds, rd_cfg)):
        ann = w["spec"]["template"]["metadata"].get("annotations", {})
        check(ann.get("prometheus.io/port") == str(port_of(cfgp["metrics"])),
              "%s: prometheus.io/port annotation is the metrics port" % w["metadata"]["name"])

    # Selection.
    check(svc["spec"].get("clusterIP") == "None", "Service rollout-pool is headless")
    labels = sts["spec"]["template"]["metadata"]["labels"]
    check(all(labels.get(k) == v for k, v in svc["spec"]["selector"].items()),
          "Service selects the StatefulSet's pods (%s)" % svc["spec"]["selector"])
    check(sts["spec"]["serviceName"] == svc["metadata"]["name"], "StatefulSet serviceName is the Service")
    for w in (sts, ds):
        sel = w["spec"]["selector"]["matchLabels"]
        tl = w["spec"]["template"]["metadata"]["labels"]
        check(all(tl.get(k) == v for k, v in sel.items()), "%s selector matches its template" % w["metadata"]["name"])
    check(all(labels.get(k) == v for k, v in pdb["spec"]["selector"]["matchLabels"].items()),
          "PodDisruptionBudget selects the pool pods")

    # Probes.
    for w in (sts, ds):
        c = container(w)
        for probe in ("readinessProbe", "livenessProbe"):
            g = c.get(probe, {}).get("httpGet", {})
            port = ports(c).get(g.get("port"), g.get("port"))
            check(g.get("path") == "/healthz" and port == ports(c).get("metrics"),
                  "%s %s: GET /healthz on the metrics port (%s %s)" % (w["metadata"]["name"], probe, g.get("path"), port))

    # Resources against the pool's profiles.
    res = pc.get("resources", {})
    req, lim = res.get("requests", {}), res.get("limits", {})
    check(req and req == lim, "pool requests equal limits (Guaranteed QoS): %s" % req)
    iso = [p for p in pool_cfg["profiles"] if p.get("type", "isolated") == "isolated"]
    mem_mib = sum(p["max"] * p["memory_mb"] for p in iso)
    cpus = sum(p["max"] * p.get("cpu_percent", 100) / 100 for p in iso)

    def mib(q):
        m = re.match(r"^(\d+)(Mi|Gi|Ti)?$", str(q))
        return int(m.group(1)) * {None: 1 / 2**20, "Mi": 1, "Gi": 1024, "Ti": 2**20}[m.group(2)]

    def cores(q):
        q = str(q)
        return int(q[:-1]) / 1000 if q.endswith("m") else float(q)

    check(mib(req.get("memory", "0")) >= mem_mib + 512,
          "pool memory request %s covers max x memory_mb of its profiles (%d MiB) + the pool" % (req.get("memory"), mem_mib))
    check(cores(req.get("cpu", "0")) >= cpus,
          "pool cpu request %s covers max x cpu_percent of its profiles (%.1f cpus)" % (req.get("cpu"), cpus))
    check(abs(mib(req.get("memory", "0")) - (mem_mib + 1024)) <= 1024,
          "pool memory request is not far above its profiles' limits either (%s vs %d MiB)" % (req.get("memory"), mem_mib))

    # Privileges.
    sc = pc.get("securityContext", {})
    check(not sc.get("privileged"), "pool is not privileged")
    caps = sc.get("capabilities", {})
    check(caps.get("drop") == ["ALL"], "pool drops ALL capabilities first")
    with open(os.path.join(K8S, "rollout-pool-statefulset.yaml")) as f:
        raw = f.read()
    for cap in caps.get("add", []):
        line = re.search(r"^\s*- %s\b.*$" % cap, raw, re.M)
        check(line and "#" in line.group(0), "capability %s has its reason in a comment" % cap)
    dsc = container(ds).get("securityContext", {})
    check(dsc.get("capabilities", {}).get("drop") == ["ALL"] and dsc.get("allowPrivilegeEscalation") is False,
          "rolloutd runs with no capabilities and no privilege escalation")

    # The image recipe: runtime packages provide every library the daemons load.
    with open(os.path.join(SRC, "deploy/container/Containerfile")) as f:
        cf = f.read()
    stage = cf.split("FROM debian:12-slim", 1)[1]
    m = re.search(r"apt-get install[^\\\n]*\\\n((?:.*\\\n)*)", stage)
    pkgs = set(re.findall(r"[a-z0-9][a-z0-9.+-]+", m.group(1) if m else "")) - {"rm", "rf", "var", "lib", "apt", "lists"}
    libs = set()
    for b in ("pool/rollout-pool", "coordinator/rolloutd"):
        out = subprocess.run(["ldd", os.path.join(BUILD, b)], capture_output=True, text=True).stdout
        libs |= set(re.findall(r"=> (\S+)", out))
    # One dpkg -S for every spelling of every path (usrmerge: /lib is /usr/lib).
    cands = {}
    for lib in libs:
        real = os.path.realpath(lib)
        for c in (lib, real, lib if lib.startswith("/usr") else "/usr" + lib,
                  real if real.startswith("/usr") else "/usr" + real):
            cands[c] = lib
    out = subprocess.run(["dpkg", "-S"] + sorted(cands), capture_output=True, text=True).stdout
    owner = {}
    for line in out.splitlines():
        pkg, _, path = line.partition(": ")
        if path in cands:
            owner[cands[path]] = pkg.split(":")[0].split(",")[0]
    # The C runtime is in every base image; sanitizer runtimes only in sanitizer builds.
    need = {o for o in owner.values()
            if o not in ("libc6", "libgcc-s1") and not re.match(r"^lib(asan|ubsan|tsan|lsan|hwasan)\d*$", o)}
    base = {"libcom-err2", "libkeyutils1", "libgssapi-krb5-2", "libkrb5-3", "libk5crypto3", "libkrb5support0",
            "libstdc++6", "libssl3", "libgnutls30", "libidn2-0", "libunistring2", "libtasn1-6", "libnettle8",
            "libhogweed6", "libgmp10", "libp11-kit0", "libffi8", "libsystemd0", "liblzma5", "libzstd1",
            "liblz4-1", "libgcrypt20", "libgpg-error0", "libcap2", "libbsd0", "libmd0", "libsodium23",
            "libpgm-5.3-0", "libnorm1", "libudev1", "libyaml-0-2", "libxml2", "libicu72", "libpciaccess0",
            "libtinfo6", "libselinux1", "libpcre2-8-0", "zlib1g", "libbrotli1", "libcrypt1",
            "libjansson4", "libmnl0", "libnftnl11", "libxtables12"}
    # Direct dependencies we name; the rest come with them (apt resolves) or with the base image.
    direct = {"libcyaml1", "libhwloc15", "libmicrohttpd12", "libnftables1", "libnuma1", "libseccomp2", "libzmq5"}
    missing = sorted((need - base) - pkgs)
    check(need and not missing, "Containerfile runtime packages provide the daemons' libraries (%s missing; needs %s)"
          % (", ".join(missing) or "none", ", ".join(sorted(need))))
    check(direct <= pkgs, "Containerfile installs %s" % ", ".join(sorted(direct)))
    check(os.path.exists(os.path.join(SRC, "deploy/container/entrypoint.sh")) and "rollout-entrypoint" in cf,
          "the image's entrypoint script exists")
    for w in (sts, ds):
        check(container(w).get("args", [""])[0].startswith("/usr/local/bin/") and "command" not in container(w),
              "%s passes its daemon as args to the image's entrypoint" % w["metadata"]["name"])

    kubectl = shutil.which("kubectl")
    if kubectl:
        r = subprocess.run([kubectl, "kustomize", K8S], capture_output=True, text=True, timeout=60)
        docs = list(yaml.safe_load_all(r.stdout)) if r.returncode == 0 else []
        kinds = sorted(d["kind"] for d in docs if d)
        check(r.returncode == 0 and kinds.count("ConfigMap") == 2,
              "kubectl kustomize renders the set offline: %s %s" % (", ".join(kinds), r.stderr.strip()[:200]))
    else:
        print("note kubectl not installed: the kustomize rendering is not checked (Debian has no kubeconform)")
    print("%d failed" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
