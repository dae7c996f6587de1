#!/usr/bin/env python3
"""Extracts the C++ examples of the documentation so that the build compiles them.

    extract_doc_examples.py <output dir> <file.md>...

Fenced blocks by their info string:
    ```cpp                a complete program: compiled, linked, and run by CTest (must exit 0, quickly)
    ```cpp compile-only   a complete program: compiled and linked, not run (needs data, or runs long)
    ```cpp compile-fail   a program that must NOT compile: its first line is `// expect: <regex>`, and
                          the compiler's output must match the regex (our static_assert message)
    ```cpp fragment       an excerpt shown for reading: not compiled (say so in the text around it)
Any other ```cpp info string is an error, so a typo cannot silently skip an example.

Each example becomes <output dir>/<doc>_<n>.cpp, starting with a #line directive that points at the
Markdown file, so compiler errors name the document and its line. <output dir>/examples.cmake lists
them for CMake: `set(JEPA_DOC_EXAMPLES name|source|md:line|kind ...)` with kind run, compile or fail.
Files are rewritten only when their content changes (no needless rebuilds).
"""
import re
import sys
from pathlib import Path

FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([^\s`]*)\s*(.*?)\s*$")
KINDS = {"": "run", "compile-only": "compile", "compile-fail": "fail", "fragment": None}


def write_if_changed(path, text):
    if not path.exists() or path.read_text() != text:
        path.write_text(text)


def extract(md):
    lines = md.read_text().splitlines()
    blocks, i = [], 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, lang, extra = m.groups()
        start = i + 1
        j = start
        while j < len(lines) and not (lines[j].strip().startswith(fence) and lines[j].strip().strip(fence[0]) == ""):
            j += 1
        if lang in ("cpp", "c++", "cxx"):
            if extra not in KINDS:
                raise SystemExit(f"{md}:{i + 1}: unknown C++ block kind '{extra}' "
                                 f"(use ```cpp, ```cpp compile-only, ```cpp compile-fail or ```cpp fragment)")
            kind = KINDS[extra]
            if kind:
                body = [l[len(indent):] if l.startswith(indent) else l for l in lines[start:j]]
                if kind == "fail" and not (body and body[0].startswith("// expect: ")):
                    raise SystemExit(f"{md}:{start + 1}: a compile-fail block starts with `// expect: <regex>`")
                blocks.append((start + 1, kind, "\n".join(body) + "\n"))
        i = j + 1
    return blocks


def main(argv):
    if len(argv) < 3:
        print(__doc__)
        return 2
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    entries, keep = [], set()
    for md_name in argv[2:]:
        md = Path(md_name).resolve()
        stem = re.sub(r"[^A-Za-z0-9]+", "_", md.stem).strip("_").lower()
        for n, (line, kind, code) in enumerate(extract(md), start=1):
            name = f"docs_example_{stem}_{n}"
            src = out / f"{name}.cpp"
            write_if_changed(src, f'#line {line} "{md}"\n{code}')
            keep.add(src.name)
            entries.append(f"{name}|{src}|{md.name}:{line}|{kind}")
    for stale in out.glob("docs_example_*.cpp"):
        if stale.name not in keep:
            stale.unlink()
    write_if_changed(out / "examples.cmake",
                     "set(JEPA_DOC_EXAMPLES\n" + "".join(f'  "{e}"\n' for e in entries) + ")\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
