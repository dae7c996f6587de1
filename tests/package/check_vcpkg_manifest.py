#!/usr/bin/env python3
"""Checks a vcpkg port (vcpkg.json, portfile.cmake, usage) against the rules of vcpkg's manifest format.

vcpkg is not installed on the build machines and cannot be downloaded there, so this is our own
checker, written from vcpkg's documented manifest reference (learn.microsoft.com/vcpkg/reference/
vcpkg-json): the allowed fields and their types, identifier and version syntax, dependency and feature
objects, platform expressions. It then cross-checks the port with the project:
  - the manifest version equals `project(jepa VERSION ...)` in CMakeLists.txt;
  - the licence is the one in LICENSE;
  - every feature the portfile maps with vcpkg_check_features exists in the manifest, and every
    manifest feature is used by the portfile;
  - the portfile installs `usage` and a copyright file.

    check_vcpkg_manifest.py <source dir>            check ports/jepa
    check_vcpkg_manifest.py --self-test             prove that broken manifests are rejected
"""
import json
import re
import sys
from pathlib import Path

IDENT = re.compile(r"^[a-z0-9]+(-[a-z0-9]+)*$")
RESERVED = {"prn", "aux", "nul", "con", "core", "default"} | {f"lpt{i}" for i in range(10)} | {f"com{i}" for i in range(10)}
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
                    r"(-((0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                    r"(\+([0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*))?$")
RELAXED = re.compile(r"^\d+(\.\d+)*"
                     r"(-((0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(\.(0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
                     r"(\+([0-9a-zA-Z-]+(\.[0-9a-zA-Z-]+)*))?$")
DATE = re.compile(r"^\d{4}-\d{2}-\d{2}(\.\d+)*$")
VERSION_FIELDS = ("version", "version-semver", "version-date", "version-string")
TOP_FIELDS = {"name", *VERSION_FIELDS, "port-version", "summary", "description", "maintainers", "homepage", "documentation",
              "license", "supports", "dependencies", "default-features", "features", "overrides", "builtin-baseline",
              "vcpkg-configuration"}
DEP_FIELDS = {"name", "host", "features", "default-features", "platform", "version>="}
FEATURE_FIELDS = {"description", "dependencies", "supports", "license"}
SPDX_ID = re.compile(r"^[A-Za-z0-9.+-]+$")


class Invalid(Exception):
    pass


def is_comment(key):
    return key.startswith("$")


def check_fields(obj, allowed, where):
    if not isinstance(obj, dict):
        raise Invalid(f"{where}: must be an object")
    for k in obj:
        if not is_comment(k) and k not in allowed:
            raise Invalid(f"{where}: unknown field '{k}' (allowed: {', '.join(sorted(allowed))}, or '$'-prefixed comments)")


def check_identifier(name, where):
    if not isinstance(name, str) or not IDENT.match(name) or name in RESERVED:
        raise Invalid(f"{where}: '{name}' is not a valid vcpkg identifier "
                      "(lowercase letters, digits and single hyphens; not a reserved name)")


def check_text(value, where):
    if isinstance(value, str):
        return
    if isinstance(value, list) and value and all(isinstance(s, str) for s in value):
        return
    raise Invalid(f"{where}: must be a string or a non-empty array of strings")


def check_platform(expr, where):
    """Platform expression: identifiers combined with !, &, | and parentheses; & and | may not be mixed
    at one level without parentheses (vcpkg rejects `a & b | c`)."""
    if not isinstance(expr, str) or not expr.strip():
        raise Invalid(f"{where}: platform expression must be a non-empty string")
    tokens = re.findall(r"[a-z0-9_-]+|[!&|(),]|\S", expr)
    pos = 0

    def peek():
        return tokens[pos] if pos < len(tokens) else None

    def take():
        nonlocal pos
        pos += 1
        return tokens[pos - 1]

    def unary():
        t = peek()
        if t == "!":
            take()
            return unary()
        if t == "(":
            take()
            binary()
            if peek() != ")":
                raise Invalid(f"{where}: unbalanced parentheses in '{expr}'")
            take()
            return
        if t is not None and re.match(r"^[a-z0-9_-]+$", t):
            take()
            return
        raise Invalid(f"{where}: unexpected '{t}' in platform expression '{expr}'")

    def binary():
        unary()
        op = None
        while peek() in ("&", "|", ","):
            t = take()
            t = "&" if t == "," else t
            if op is not None and t != op:
                raise Invalid(f"{where}: mixing & and | needs parentheses in '{expr}'")
            op = t
            unary()

    binary()
    if pos != len(tokens):
        raise Invalid(f"{where}: trailing '{' '.join(tokens[pos:])}' in platform expression '{expr}'")


def check_dependency(dep, where):
    if isinstance(dep, str):
        check_identifier(dep, where)
        return dep
    check_fields(dep, DEP_FIELDS, where)
    if "name" not in dep:
        raise Invalid(f"{where}: a dependency object needs 'name'")
    check_identifier(dep["name"], f"{where}.name")
    for b in ("host", "default-features"):
        if b in dep and not isinstance(dep[b], bool):
            raise Invalid(f"{where}.{b}: must be true or false")
    if "platform" in dep:
        check_platform(dep["platform"], f"{where}.platform")
    if "features" in dep:
        if not isinstance(dep["features"], list):
            raise Invalid(f"{where}.features: must be an array")
        for i, f in enumerate(dep["features"]):
            fname = f if isinstance(f, str) else (f.get("name") if isinstance(f, dict) else None)
            check_identifier(fname, f"{where}.features[{i}]")
            if isinstance(f, dict):
                check_fields(f, {"name", "platform"}, f"{where}.features[{i}]")
                if "platform" in f:
                    check_platform(f["platform"], f"{where}.features[{i}].platform")
    if "version>=" in dep:
        v = dep["version>="]
        if not isinstance(v, str) or not re.match(r"^[^#]+(#\d+)?$", v):
            raise Invalid(f"{where}.version>=: must be a version string, optionally '#<port-version>'")
    return dep["name"]


def check_dependencies(deps, where):
    if not isinstance(deps, list):
        raise Invalid(f"{where}: must be an array")
    names = [check_dependency(d, f"{where}[{i}]") for i, d in enumerate(deps)]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise Invalid(f"{where}: duplicate dependencies {sorted(dup)}")


def check_license(lic, where):
    if lic is None:
        return
    if not isinstance(lic, str):
        raise Invalid(f"{where}: must be an SPDX expression string or null")
    for tok in re.findall(r"[^\s()]+", lic):
        if tok in ("AND", "OR", "WITH"):
            continue
        if not SPDX_ID.match(tok):
            raise Invalid(f"{where}: '{tok}' is not an SPDX licence identifier")


def check_manifest(m, port=True):
    """Raises Invalid for the first rule `m` breaks; returns the list of feature names."""
    check_fields(m, TOP_FIELDS, "vcpkg.json")
    if port or "name" in m:
        if "name" not in m:
            raise Invalid("vcpkg.json: a port needs 'name'")
        check_identifier(m["name"], "vcpkg.json.name")
    versions = [f for f in VERSION_FIELDS if f in m]
    if len(versions) > 1:
        raise Invalid(f"vcpkg.json: only one of {', '.join(VERSION_FIELDS)} may be given (found {versions})")
    if port and not versions:
        raise Invalid(f"vcpkg.json: a port needs one of {', '.join(VERSION_FIELDS)}")
    for f in versions:
        v = m[f]
        ok = isinstance(v, str) and {"version": RELAXED, "version-semver": SEMVER, "version-date": DATE}.get(
            f, re.compile(r"^[^#]+$")).match(v)
        if not ok:
            raise Invalid(f"vcpkg.json.{f}: '{v}' is not a valid {f}")
    if "port-version" in m and (not isinstance(m["port-version"], int) or isinstance(m["port-version"], bool)
                                or m["port-version"] < 0):
        raise Invalid("vcpkg.json.port-version: must be a non-negative integer")
    if port and "description" not in m:
        raise Invalid("vcpkg.json: a port needs 'description'")
    if "description" in m:
        check_text(m["description"], "vcpkg.json.description")
    if "summary" in m and not isinstance(m["summary"], str):
        raise Invalid("vcpkg.json.summary: must be a string")
    if "maintainers" in m:
        check_text(m["maintainers"], "vcpkg.json.maintainers")
    for url in ("homepage", "documentation"):
        if url in m and (not isinstance(m[url], str) or not re.match(r"^https?://\S+$", m[url])):
            raise Invalid(f"vcpkg.json.{url}: must be an http(s) URL")
    if "license" in m:
        check_license(m["license"], "vcpkg.json.license")
    if "supports" in m:
        check_platform(m["supports"], "vcpkg.json.supports")
    if "dependencies" in m:
        check_dependencies(m["dependencies"], "vcpkg.json.dependencies")
    features = []
    if "features" in m:
        if not isinstance(m["features"], dict):
            raise Invalid("vcpkg.json.features: must be an object mapping feature names to feature objects")
        for name, feat in m["features"].items():
            # "$" comments are allowed only in objects with a fixed set of keys, not in "features".
            where = f"vcpkg.json.features.{name}"
            check_identifier(name, where)
            check_fields(feat, FEATURE_FIELDS, where)
            if "description" not in feat:
                raise Invalid(f"{where}: a feature needs 'description'")
            check_text(feat["description"], f"{where}.description")
            if "dependencies" in feat:
                check_dependencies(feat["dependencies"], f"{where}.dependencies")
            if "supports" in feat:
                check_platform(feat["supports"], f"{where}.supports")
            if "license" in feat:
                check_license(feat["license"], f"{where}.license")
            features.append(name)
    if "default-features" in m:
        if not isinstance(m["default-features"], list):
            raise Invalid("vcpkg.json.default-features: must be an array")
        for i, f in enumerate(m["default-features"]):
            name = f if isinstance(f, str) else (f.get("name") if isinstance(f, dict) else None)
            if name not in features:
                raise Invalid(f"vcpkg.json.default-features[{i}]: '{name}' is not a feature of this manifest")
    if "builtin-baseline" in m and (not isinstance(m["builtin-baseline"], str)
                                    or not re.match(r"^[0-9a-f]{40}$", m["builtin-baseline"])):
        raise Invalid("vcpkg.json.builtin-baseline: must be a 40-hex-digit commit")
    return features


def check_port(src):
    port_dir = src / "ports" / "jepa"
    text = (port_dir / "vcpkg.json").read_text()
    try:
        m = json.loads(text)
    except json.JSONDecodeError as e:
        raise Invalid(f"vcpkg.json is not valid JSON: {e}")
    features = check_manifest(m)
    if m["name"] != port_dir.name:
        raise Invalid(f"vcpkg.json.name '{m['name']}' differs from the port directory '{port_dir.name}'")

    cmake = (src / "CMakeLists.txt").read_text()
    pv = re.search(r"project\(\s*jepa\s+VERSION\s+([0-9.]+)", cmake)
    version = next(m[f] for f in VERSION_FIELDS if f in m)
    if not pv or pv.group(1) != version:
        raise Invalid(f"vcpkg.json version {version} differs from CMakeLists.txt's project VERSION "
                      f"{pv.group(1) if pv else '(none)'}")
    lic = (src / "LICENSE").read_text()
    if m.get("license") == "Apache-2.0" and not ("Apache License" in lic and "Version 2.0" in lic):
        raise Invalid("vcpkg.json says Apache-2.0 but LICENSE is not the Apache License 2.0")

    portfile = (port_dir / "portfile.cmake").read_text()
    body = re.sub(r"#[^\n]*", "", portfile)
    cf = re.search(r"vcpkg_check_features\((.*?)\)", body, re.S)
    mapped = []
    if cf:
        words = cf.group(1).split()
        if "FEATURES" in words:
            rest = words[words.index("FEATURES") + 1:]
            rest = rest[: next((i for i, w in enumerate(rest) if w in ("INVERTED_FEATURES",)), len(rest))]
            if len(rest) % 2:
                raise Invalid("portfile.cmake: vcpkg_check_features FEATURES needs <feature> <option> pairs")
            mapped = rest[0::2]
    for f in mapped:
        if f not in features:
            raise Invalid(f"portfile.cmake maps feature '{f}', which vcpkg.json does not declare")
    for f in features:
        if f not in mapped:
            raise Invalid(f"vcpkg.json declares feature '{f}', which portfile.cmake never maps to an option")
    if "vcpkg_install_copyright" not in body and "/copyright" not in body:
        raise Invalid("portfile.cmake installs no copyright file")
    if not (port_dir / "usage").is_file() or '"${CMAKE_CURRENT_LIST_DIR}/usage"' not in body:
        raise Invalid("the port has no usage file, or portfile.cmake does not install it")
    host = {d["name"] for d in m.get("dependencies", []) if isinstance(d, dict) and d.get("host")}
    for helper, needs in (("vcpkg_cmake_configure", "vcpkg-cmake"), ("vcpkg_cmake_config_fixup", "vcpkg-cmake-config")):
        if helper in body and needs not in host:
            raise Invalid(f"portfile.cmake calls {helper} but vcpkg.json lacks the host dependency '{needs}'")
    return m, features, mapped


BAD = [
    ({"name": "Jepa", "version": "1.0", "description": "x"}, "not a valid vcpkg identifier"),
    ({"name": "jepa", "version": "1.0", "version-semver": "1.0.0", "description": "x"}, "only one of"),
    ({"name": "jepa", "description": "x"}, "a port needs one of"),
    ({"name": "jepa", "version-semver": "1.0", "description": "x"}, "not a valid version-semver"),
    ({"name": "jepa", "version": "1.0", "description": "x", "licence": "MIT"}, "unknown field 'licence'"),
    ({"name": "jepa", "version": "1.0"}, "needs 'description'"),
    ({"name": "jepa", "version": "1.0", "description": "x", "port-version": -1}, "non-negative integer"),
    ({"name": "jepa", "version": "1.0", "description": "x", "supports": "linux & x64 | osx"}, "needs parentheses"),
    ({"name": "jepa", "version": "1.0", "description": "x", "dependencies": [{"host": True}]}, "needs 'name'"),
    ({"name": "jepa", "version": "1.0", "description": "x", "dependencies": ["eigen3", "eigen3"]}, "duplicate"),
    ({"name": "jepa", "version": "1.0", "description": "x", "dependencies": [{"name": "a", "host": "yes"}]},
     "must be true or false"),
    ({"name": "jepa", "version": "1.0", "description": "x", "features": {"cuda": {"dependencies": []}}},
     "a feature needs 'description'"),
    ({"name": "jepa", "version": "1.0", "description": "x", "features": {"core": {"description": "y"}}},
     "not a valid vcpkg identifier"),
    ({"name": "jepa", "version": "1.0", "description": "x", "default-features": ["cuda"]}, "is not a feature"),
    ({"name": "jepa", "version": "1.0", "description": "x", "license": "Apache 2.0!"}, "SPDX"),
    ({"name": "jepa", "version": "1.0", "description": "x", "supports": "(linux"}, "parenthes"),
    ({"name": "jepa", "version": "1.0", "description": "x", "features": {"$note": {"description": "y"}}},
     "not a valid vcpkg identifier"),
    ({"name": "jepa", "version": "1.0.", "description": "x"}, "not a valid version"),
]
GOOD = [
    {"name": "jepa", "version-semver": "0.1.0-rc.1+b5", "description": ["a", "b"], "$comment": "ok",
     "supports": "!(windows & arm) & !uwp", "license": "Apache-2.0 OR MIT",
     "dependencies": ["eigen3", {"name": "vcpkg-cmake", "host": True}, {"name": "ffmpeg", "features": ["avcodec"],
                                                                        "platform": "linux", "version>=": "6.1#2"}],
     "features": {"cuda": {"description": "c", "dependencies": ["cuda"], "supports": "x64"}},
     "default-features": ["cuda"]},
]


def self_test():
    failures = 0
    for manifest, expect in BAD:
        try:
            check_manifest(manifest)
            print(f"self-test: NOT rejected: {json.dumps(manifest)}")
            failures += 1
        except Invalid as e:
            if expect not in str(e):
                print(f"self-test: rejected for the wrong reason ({e}); expected '{expect}'")
                failures += 1
    for manifest in GOOD:
        try:
            check_manifest(manifest)
        except Invalid as e:
            print(f"self-test: valid manifest rejected: {e}")
            failures += 1
    print(f"self-test: {len(BAD)} invalid manifests rejected, {len(GOOD)} valid accepted" if not failures
          else f"self-test: {failures} failures")
    return failures == 0


def main(argv):
    if len(argv) == 2 and argv[1] == "--self-test":
        return 0 if self_test() else 1
    if len(argv) != 2:
        print(__doc__)
        return 2
    if not self_test():
        return 1
    try:
        m, features, mapped = check_port(Path(argv[1]))
    except Invalid as e:
        print(f"ports/jepa: {e}")
        return 1
    deps = [d if isinstance(d, str) else d["name"] for d in m.get("dependencies", [])]
    print(f"ports/jepa: vcpkg.json valid: {m['name']} {next(m[f] for f in VERSION_FIELDS if f in m)}, "
          f"dependencies {deps}, features {features} (portfile maps {mapped})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
