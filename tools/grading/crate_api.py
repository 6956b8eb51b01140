"""The public items of the course crate as a notebook loads it, read from rustdoc's JSON output.

An exercise forbids whole modules of the crate ("everything that convolves": `convlab::conv`),
so a function added to that module later is forbidden without editing a notebook. Checking that
needs two facts the student's code does not show: where an item a path names is defined (the
prelude and other modules re-export), and which items return an exercise's answer type (the
test in tests/test_grading_rules.py holds every such item to a stated rule). Both come from
rustdoc, which documents exactly what a notebook can reach:

    api = crate_api.load(features_of(':dep convlab = { path = "…", default-features = false }'))
    api.canonical(["convlab", "prelude", "filters", "vertical_edge"])  # 'convlab::filters::vertical_edge'
    [f.path for f in api.functions() if f.output == "Result<Array<f32, Ix2>>"]

rustdoc's JSON output is unstable: it is read with RUSTC_BOOTSTRAP=1 on the course's stable
toolchain, once per crate version and feature set, and kept in $CONVLAB_CACHE/crate-api/."""
from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CRATE = ROOT / "crates" / "convlab"
CRATE_NAME = "convlab"
CACHE = Path(os.environ.get("CONVLAB_CACHE", Path.home() / ".cache" / "convlab")) / "crate-api"
FORMAT_VERSIONS = range(45, 80)  # rustdoc JSON formats this reader knows


class ApiError(RuntimeError):
    """The crate's public items could not be read; the message says what to do."""


@dataclass(frozen=True)
class Features:
    default: bool = True
    extra: tuple[str, ...] = ()

    def cargo_args(self) -> list[str]:
        args = [] if self.default else ["--no-default-features"]
        return args + (["--features", ",".join(self.extra)] if self.extra else [])


def features_of(dep_line: str) -> Features:
    """The features a `:dep convlab = { … }` line asks for.

        >>> features_of(':dep convlab = { path = "../crates/convlab", default-features = false }')
        Features(default=False, extra=())
        >>> features_of(':dep convlab = { path = "x", features = ["bench"] }')
        Features(default=True, extra=('bench',))
    """
    default = not re.search(r"default-features\s*=\s*false", dep_line)
    m = re.search(r"features\s*=\s*\[([^\]]*)\]", dep_line.replace("default-features", "default_f"))
    extra = tuple(sorted(re.findall(r'"([^"]+)"', m.group(1)))) if m else ()
    return Features(default, extra)


# ---------------------------------------------------------------------------------------------
# Types, as short strings


ALIASES = {"Array1": "Ix1", "Array2": "Ix2", "Array3": "Ix3", "Array4": "Ix4", "ArrayD": "IxDyn"}


def type_str(t: dict | None, self_type: str = "Self") -> str:
    """A rustdoc type as a short string: last path segments, ndarray's aliases spelt out
    (`Array2<f32>` → `Array<f32, Ix2>`), generic parameters as `_`."""
    if t is None:
        return "()"
    (kind, v), = t.items()
    if kind == "primitive":
        return v
    if kind == "generic":
        return self_type if v == "Self" else "_"
    if kind == "tuple":
        return "(" + ", ".join(type_str(x, self_type) for x in v) + ")"
    if kind in ("slice", "array"):
        inner = v if kind == "slice" else v["type"]
        return "[" + type_str(inner, self_type) + "]"
    if kind == "borrowed_ref":
        return "&" + type_str(v["type"], self_type)
    if kind == "raw_pointer":
        return "*" + type_str(v["type"], self_type)
    if kind == "resolved_path":
        name = v["path"].split("::")[-1]
        args = []
        a = (v.get("args") or {}).get("angle_bracketed") or {}
        for arg in a.get("args", []):
            if "type" in arg:
                args.append(type_str(arg["type"], self_type))
        return named_type(name, args)
    if kind == "qualified_path":
        return "assoc:" + v.get("name", "?")  # S::Ok, Self::Item: a trait's associated type
    return kind  # impl Trait, dyn Trait, fn pointers: not an answer type


def named_type(name: str, args: list[str]) -> str:
    if name in ALIASES:
        return f"Array<{args[0] if args else '_'}, {ALIASES[name]}>"
    if name == "ArrayBase" and len(args) == 2 and args[0].startswith("OwnedRepr<"):
        return f"Array<{args[0][len('OwnedRepr<'):-1]}, {args[1]}>"
    if name == "Result" and len(args) == 2:
        args = args[:1]  # the error type does not matter: `?` or `.unwrap()` gives the value
    return f"{name}<{', '.join(args)}>" if args else name


def source_type(tokens: list[str]) -> str:
    """A type as written in Rust source (tokens), as a short string (type_str's form).

        >>> source_type("convlab :: Result < KerasSgd >".split())
        'Result<KerasSgd>'
        >>> source_type("Vec < ( usize , f32 ) >".split())
        'Vec<(usize, f32)>'
    """
    pos = 0

    def parse() -> str:
        nonlocal pos
        t = tokens[pos]
        if t == "&":
            pos += 1
            if pos < len(tokens) and tokens[pos] == "mut":
                pos += 1
            return "&" + parse()
        if t == "(":
            pos += 1
            items = []
            while tokens[pos] != ")":
                items.append(parse())
                if tokens[pos] == ",":
                    pos += 1
            pos += 1
            return "(" + ", ".join(items) + ")"
        if t == "[":
            pos += 1
            inner = parse()
            while tokens[pos] != "]":
                pos += 1
            pos += 1
            return "[" + inner + "]"
        name = t
        pos += 1
        while pos + 1 < len(tokens) and tokens[pos] == "::":
            name = tokens[pos + 1]
            pos += 2
        args = []
        if pos < len(tokens) and tokens[pos] == "<":
            pos += 1
            while tokens[pos] != ">":
                args.append(parse())
                if tokens[pos] == ",":
                    pos += 1
            pos += 1
        return named_type(name, args)

    return parse()


def returns(output: str, answer: str) -> bool:
    """Does a function with this output give the answer type (itself, or through `?`)?

        >>> returns("Result<Array<f32, Ix2>>", "Array<f32, Ix2>"), returns("Array<f32, _>", "Array<f32, Ix2>")
        (True, True)
        >>> returns("Array<f32, Ix3>", "Array<f32, Ix2>"), returns("Vec<f32>", "f32")
        (False, False)
    """
    for wrapper in ("Result<", "Option<"):
        if output.startswith(wrapper) and output.endswith(">"):
            return returns(output[len(wrapper):-1], answer) or _same(output, answer)
    return _same(output, answer)


def _same(a: str, b: str) -> bool:
    """Equal types, a generic `_` matching any one type (`Array<f32, _>` is every array of f32)."""
    return _match(_tree(a), _tree(b))


def _tree(text: str):
    """A short type string as (head, [argument trees]): `Array<f32, Ix2>` → ("Array", [...])."""
    toks = re.findall(r"[\w&*:]+|[<>(),\[\]]", text)
    pos = 0

    def parse():
        nonlocal pos
        t = toks[pos]
        pos += 1
        if t in ("(", "["):
            close = ")" if t == "(" else "]"
            args = []
            while toks[pos] != close:
                args.append(parse())
                if toks[pos] == ",":
                    pos += 1
            pos += 1
            return (t, args)
        args = []
        if pos < len(toks) and toks[pos] == "<":
            pos += 1
            while toks[pos] != ">":
                args.append(parse())
                if toks[pos] == ",":
                    pos += 1
            pos += 1
        return (t, args)

    return parse()


def _match(x, y) -> bool:
    if x[0] == "_" or y[0] == "_":
        return True
    return x[0] == y[0] and len(x[1]) == len(y[1]) and all(_match(a, b) for a, b in zip(x[1], y[1]))


# ---------------------------------------------------------------------------------------------
# The crate's items


@dataclass(frozen=True)
class ApiFunction:
    path: str  # where it is defined: convlab::conv::convolve, convlab::display::Picture::new
    output: str  # type_str of what it returns


class CrateApi:
    """The crate's public items, from rustdoc's JSON (`doc`)."""

    def __init__(self, doc: dict):
        if doc.get("format_version") not in FORMAT_VERSIONS:
            raise ApiError(f"rustdoc JSON format {doc.get('format_version')} is not one this reader knows "
                           f"({FORMAT_VERSIONS.start}–{FORMAT_VERSIONS.stop - 1}): update tools/grading/crate_api.py")
        self.index = doc["index"]
        self.paths = doc["paths"]
        self.root = str(doc["root"])
        self.owner: dict[str, str] = {}  # method id -> canonical path of its type or trait
        for iid, item in self.index.items():
            inner = item.get("inner", {})
            if "impl" in inner:
                imp = inner["impl"]
                if imp.get("is_synthetic") or imp.get("blanket_impl"):
                    continue
                owner = self._path_of_type(imp.get("for"))
                if owner:
                    for m in imp.get("items", []):
                        self.owner.setdefault(str(m), owner)
            elif "trait" in inner and str(iid) in self.paths:
                for m in inner["trait"].get("items", []):
                    self.owner.setdefault(str(m), self.path_of(str(iid)))

    def path_of(self, iid: str) -> str | None:
        entry = self.paths.get(str(iid))
        return "::".join(entry["path"]) if entry else None

    def _path_of_type(self, t: dict | None) -> str | None:
        if t and "resolved_path" in t:
            return self.path_of(str(t["resolved_path"]["id"]))
        return None

    def _kind(self, iid: str) -> str:
        item = self.index.get(iid)
        return next(iter(item["inner"])) if item else "external"

    def _children(self, iid: str) -> list[tuple[str, str]]:
        """(name, id) of what a module, type or trait holds by name (re-exports followed)."""
        item = self.index.get(iid)
        if item is None:
            return []
        kind, inner = next(iter(item["inner"].items()))
        out: list[tuple[str, str]] = []
        if kind == "module":
            for c in inner["items"]:
                child = self.index.get(str(c))
                if child is None:
                    continue
                if "use" in child["inner"]:
                    use = child["inner"]["use"]
                    if use.get("id") is None:
                        continue
                    if use.get("is_glob"):
                        out += self._children(str(use["id"]))
                    else:
                        out.append((use["name"], str(use["id"])))
                elif child.get("name"):
                    out.append((child["name"], str(c)))
        elif kind in ("struct", "enum", "union"):
            for imp in inner.get("impls", []):
                body = self.index.get(str(imp), {}).get("inner", {}).get("impl", {})
                if body.get("is_synthetic") or body.get("blanket_impl"):
                    continue
                for m in body.get("items", []):
                    if m_item := self.index.get(str(m)):
                        out.append((m_item["name"], str(m)))
            if kind == "enum":
                out += [(self.index[str(v)]["name"], str(v)) for v in inner.get("variants", []) if str(v) in self.index]
        elif kind == "trait":
            out += [(self.index[str(m)]["name"], str(m)) for m in inner.get("items", []) if str(m) in self.index]
        return out

    def canonical(self, segments: list[str]) -> str | None:
        """Where the item a path names is defined (`convlab::prelude::filters` →
        `convlab::filters`); None when the path names nothing public in the crate. A path
        into another crate (the re-exported ndarray) gives `extern:` and the path."""
        if not segments or segments[0] != CRATE_NAME:
            return None
        iid = self.root
        for k, seg in enumerate(segments[1:], 1):
            if iid not in self.index:  # another crate's item: not ours
                base = self.path_of(iid) or "?"
                return "extern:" + "::".join([base, *segments[k:]])
            found = [c for name, c in self._children(iid) if name == seg]
            if not found:
                return None
            iid = found[0]
        return self.item_path(iid)

    def item_path(self, iid: str) -> str | None:
        if iid in self.owner:
            return f"{self.owner[iid]}::{self.index[iid]['name']}"
        path = self.path_of(iid)
        if path is None:
            return None
        if self.paths[iid].get("crate_id", 0) != 0:
            return "extern:" + path
        return path

    def functions(self) -> list[ApiFunction]:
        """Every public function and method of the crate, with what it returns."""
        out = []
        for iid, item in self.index.items():
            if item.get("crate_id") != 0 or "function" not in item.get("inner", {}):
                continue
            path = self.item_path(iid)
            if path is None or path.startswith("extern:"):
                continue
            owner = self.owner.get(iid)
            self_type = owner.split("::")[-1] if owner else "Self"
            out.append(ApiFunction(path, type_str(item["inner"]["function"]["sig"].get("output"), self_type)))
        return sorted(out, key=lambda f: f.path)

    def method_names_under(self, prefix: str) -> set[str]:
        """The names of the methods of the types and traits defined at or under `prefix`."""
        return {self.index[m]["name"] for m, owner in self.owner.items()
                if (owner == prefix or owner.startswith(prefix + "::")) and m in self.index}


# ---------------------------------------------------------------------------------------------
# Reading it once per crate version and feature set


def _key(features: Features) -> str:
    h = hashlib.sha256()
    h.update(repr(features).encode())
    h.update(subprocess.run(["rustc", "-V"], capture_output=True, text=True).stdout.encode())
    for p in [ROOT / "Cargo.toml", ROOT / "Cargo.lock", CRATE / "Cargo.toml",
              *sorted((CRATE / "src").rglob("*.rs"))]:
        h.update(str(p.relative_to(ROOT)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:20]


@lru_cache(maxsize=None)
def load(features: Features = Features()) -> CrateApi:
    """The crate's public items with `features` (rustdoc run on a cache miss: a minute or so)."""
    target = CACHE / f"{_key(features)}.json"
    if not target.exists():
        # A build folder of its own: RUSTC_BOOTSTRAP would make cargo build the clone's
        # dependencies anew for the next `cargo test`.
        build = CACHE.parent / f"target-api-{os.environ.get('CONVLAB_CLONE_ID', 'default')}"
        cmd = ["cargo", "rustdoc", "-q", "-p", CRATE_NAME, "--lib", *features.cargo_args(), "--",
               "-Z", "unstable-options", "--output-format", "json", "-A", "warnings"]
        env = {**os.environ, "RUSTC_BOOTSTRAP": "1", "CARGO_TARGET_DIR": str(build)}
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        made = build / "doc" / f"{CRATE_NAME}.json"
        if proc.returncode != 0 or not made.exists():
            raise ApiError(f"could not list the crate's public items (`{' '.join(cmd)}` with RUSTC_BOOTSTRAP=1 "
                           f"exited {proc.returncode}): {proc.stderr.strip()[-1500:]}")
        CACHE.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(made.read_bytes())
        tmp.replace(target)
    return CrateApi(json.loads(target.read_text()))


def for_notebook(nb) -> CrateApi | None:
    """The crate as the notebook's `:dep convlab` line loads it (None: it does not load it)."""
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for line in cell.source.splitlines():
            if re.match(rf"\s*:dep\s+{CRATE_NAME}\s*=", line):
                return load(features_of(line))
    return None


def declared_types(source: str) -> dict[str, str]:
    """{name: type} of what an answer cell defines with a stated type: `fn name(…) -> T` and
    `let name: T = …` at its top level (the answer types of its exercise).

        >>> declared_types("fn convolve<D: Dimension>(a: &A) -> Array2<f32> { todo!() }\\nlet v: Array3<f32> = x;")
        {'convolve': 'Array<f32, Ix2>', 'v': 'Array<f32, Ix3>'}
    """
    import rustscan

    out = {}
    for it in rustscan.items(rustscan.tokens(source)):
        words = [t.text for t in it.toks]
        k = rustscan._skip_attrs_and_vis(it.toks)
        if k + 1 < len(words) and words[k] == "let" and words[k + 1] == "mut":
            k += 1
            words[k] = "let"
        if k + 2 < len(words) and words[k] == "fn":
            arrow = next((j for j in range(k, len(words) - 1) if words[j] == "-" and words[j + 1] == ">"), None)
            if arrow is not None:
                end = next((j for j in range(arrow, len(words)) if words[j] in ("{", "where")), len(words))
                out[words[k + 1]] = source_type(words[arrow + 2:end])
        elif k + 3 < len(words) and words[k] == "let" and words[k + 2] == ":":
            end = next((j for j in range(k, len(words)) if words[j] == "="), len(words))
            out[words[k + 1]] = source_type(words[k + 3:end])
    return out
