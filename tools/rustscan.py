"""A small reader of Rust cell code for grading: which crate items a student's code reaches.

Grading needs three facts about the code a student wrote (answer cells and cells they added),
without compiling it:

* the paths it names, resolved through `use … as …` renames, nested `use` trees, glob imports
  and `extern crate … as …` (``uses``);
* which of its top-level items (functions, `let`s, types, impls) lean on which others, so that a
  helper in an added cell counts for the answer that calls it (``items``);
* constructs that act outside the cell's own call — threads, processes, `unsafe`, foreign
  functions, linker attributes (``denied``).

It is a tokenizer with a little structure, not a Rust parser: comments, strings and character
literals are dropped first, so nothing hidden in them counts; identifiers cannot be assembled
by macros in stable Rust, so a token-level check cannot be dodged by spelling.

    >>> toks = tokens('use convlab::conv::{self as c}; let x = c::convolve(&a, &b); // convolve_fast')
    >>> [(".".join(p.segments), p.line) for p in paths(toks)]
    [('x', 1), ('c.convolve', 1), ('a', 1), ('b', 1)]
    >>> imports(toks).aliases["c"]
    ['convlab', 'conv']
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

IDENT = re.compile(r"[^\W\d]\w*")  # Rust identifiers may be Unicode (NFC)
RAW_STRING = re.compile(r'b?r(#*)"')


@dataclass(frozen=True)
class Token:
    text: str
    line: int  # 1-based, in the cell

    @property
    def is_ident(self) -> bool:
        return bool(IDENT.fullmatch(self.text))


def tokens(src: str) -> list[Token]:
    """The cell's tokens without comments, string, byte-string and character literals (each
    literal becomes one token `"…"`, so `f("x")` still reads as a call with an argument)."""
    out: list[Token] = []
    i, line, n = 0, 1, len(src)
    while i < n:
        c = src[i]
        if c == "\n":
            line += 1
            i += 1
        elif c.isspace():
            i += 1
        elif src.startswith("//", i):
            j = src.find("\n", i)
            i = n if j < 0 else j
        elif src.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if src.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif src.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    line += src[i] == "\n"
                    i += 1
        elif (m := RAW_STRING.match(src, i)) and (i == 0 or not (src[i - 1].isalnum() or src[i - 1] == "_")):
            end = '"' + m.group(1)
            j = src.find(end, m.end())
            j = n if j < 0 else j + len(end)
            out.append(Token('"…"', line))
            line += src.count("\n", i, j)
            i = j
        elif c == '"' or (c == "b" and src.startswith('b"', i)):
            j = i + (2 if c == "b" else 1)
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(Token('"…"', line))
            line += src.count("\n", i, j)
            i = j + 1
        elif c == "'" or (c == "b" and src.startswith("b'", i)):
            j = i + (2 if c == "b" else 1)
            # a char literal ('a', '\n', '\u{1F600}') or a lifetime ('a)
            m = re.match(r"(\\.[^']*|[^'\\])'", src[j:j + 12])
            if m:
                out.append(Token("'…'", line))
                i = j + m.end()
            else:
                m = IDENT.match(src, j)
                out.append(Token("'" + (m.group(0) if m else ""), line))
                i = m.end() if m else j
        elif m := IDENT.match(src, i):
            word = m.group(0)
            if word == "r" and src.startswith("#", m.end()) and IDENT.match(src, m.end() + 1):
                m2 = IDENT.match(src, m.end() + 1)  # raw identifier r#name
                out.append(Token(m2.group(0), line))
                i = m2.end()
            else:
                out.append(Token(word, line))
                i = m.end()
        elif src.startswith("::", i):
            out.append(Token("::", line))
            i += 2
        else:
            out.append(Token(c, line))
            i += 1
    return out


# ---------------------------------------------------------------------------------------------
# Imports


@dataclass
class Imports:
    aliases: dict[str, list[str]] = field(default_factory=dict)  # local name -> full path
    globs: list[list[str]] = field(default_factory=list)  # `use a::b::*` -> ["a", "b"]

    def merge(self, other: "Imports") -> None:
        self.aliases.update(other.aliases)
        self.globs += [g for g in other.globs if g not in self.globs]


def _use_tree(toks: list[Token], i: int, prefix: list[str], imp: Imports) -> int:
    """Parses one use tree starting at toks[i]; returns the index after it."""
    path = list(prefix)
    while i < len(toks):
        t = toks[i].text
        if t == "::":
            i += 1
        elif t == "{":
            i += 1
            while i < len(toks) and toks[i].text != "}":
                i = _use_tree(toks, i, path, imp)
                if i < len(toks) and toks[i].text == ",":
                    i += 1
            return i + 1
        elif t == "*":
            imp.globs.append(path)
            return i + 1
        elif toks[i].is_ident:
            if t == "self" and path:
                local = path[-1]
            else:
                path = path + [t]
                local = t
            i += 1
            if i < len(toks) and toks[i].text == "as" and i + 1 < len(toks):
                local = toks[i + 1].text
                i += 2
            if i < len(toks) and toks[i].text == "::":
                continue
            if local != "_":
                imp.aliases[local] = path
            return i
        else:
            return i
    return i


def imports(toks: list[Token]) -> Imports:
    """The names that `use` declarations and `extern crate … as …` bring into scope."""
    imp = Imports()
    for i, t in enumerate(toks):
        if t.text == "use" and (i == 0 or toks[i - 1].text in (";", "}", "{", "pub", ")", "]")):
            j = i + 1
            if j < len(toks) and toks[j].text == "::":
                j += 1
            _use_tree(toks, j, [], imp)
        elif t.text == "extern" and i + 2 < len(toks) and toks[i + 1].text == "crate":
            name = toks[i + 2].text
            local = toks[i + 4].text if i + 4 < len(toks) and toks[i + 3].text == "as" else name
            imp.aliases[local] = [name]
    return imp


# ---------------------------------------------------------------------------------------------
# Paths and method calls


@dataclass(frozen=True)
class PathRef:
    segments: tuple[str, ...]
    line: int
    method: bool = False  # `.name(`: a method call, segments is (name,)
    absolute: bool = False  # written with a leading `::`


def _in_use(toks: list[Token]) -> set[int]:
    """Indices of tokens inside `use …;` declarations (imports are not uses by themselves)."""
    inside: set[int] = set()
    i = 0
    while i < len(toks):
        if toks[i].text == "use" and (i == 0 or toks[i - 1].text in (";", "}", "{", "pub", ")", "]")):
            j = i
            while j < len(toks) and toks[j].text != ";":
                inside.add(j)
                j += 1
            i = j
        i += 1
    return inside


KEYWORDS = {"as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
            "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
            "self", "Self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use",
            "where", "while", "async", "await", "dyn"}


def paths(toks: list[Token]) -> list[PathRef]:
    """Every path (`a::b::c`, `c`) and method call (`.c(`) the code names, outside `use`s."""
    skip = _in_use(toks)
    out: list[PathRef] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if i in skip:
            i += 1
            continue
        if t.text == "." and i + 1 < len(toks) and toks[i + 1].is_ident:
            nxt = toks[i + 2].text if i + 2 < len(toks) else ""
            if nxt in ("(", "::"):
                out.append(PathRef((toks[i + 1].text,), toks[i + 1].line, method=True))
            i += 2
            continue
        absolute = t.text == "::" and (i == 0 or not toks[i - 1].is_ident)
        start = i + 1 if absolute else i
        if start < len(toks) and toks[start].is_ident and toks[start].text not in KEYWORDS - {"crate", "self", "Self"}:
            segs = [toks[start].text]
            j = start + 1
            while j + 1 < len(toks) and toks[j].text == "::":
                if toks[j + 1].is_ident:
                    segs.append(toks[j + 1].text)
                    j += 2
                elif toks[j + 1].text == "<":  # turbofish: a::<T>::b — skip the generics
                    depth, j = 0, j + 1
                    while j < len(toks):
                        depth += {"<": 1, ">": -1}.get(toks[j].text, 0)
                        j += 1
                        if depth == 0:
                            break
                else:
                    break
            out.append(PathRef(tuple(segs), toks[start].line, absolute=absolute))
            i = j
            continue
        i += 1
    return out


# ---------------------------------------------------------------------------------------------
# Top-level items: what a cell defines, and which tokens belong to which definition

ITEM_WORDS = {"fn", "struct", "enum", "union", "trait", "type", "const", "static", "mod"}


@dataclass
class Item:
    names: set[str]
    toks: list[Token]

    @property
    def kind(self) -> str:
        """The item's keyword (`fn`, `let`, `struct`, `mod`, `impl`, …), or "" for a statement."""
        for t in self.toks:
            if t.text in ("pub", "crate", "(", ")", "async", "unsafe", "extern", "#"):
                continue
            return t.text if t.text in ITEM_WORDS | {"let", "impl", "macro_rules"} else ""
        return ""


def items(toks: list[Token]) -> list[Item]:
    """The cell's top-level items and statements, each with the names it defines (none for a
    plain statement). An `impl` defines its type's name and its methods' names."""
    out: list[Item] = []
    i = 0
    while i < len(toks):
        j, depth = i, 0
        braced = False
        while j < len(toks):
            t = toks[j].text
            if t in "({[":
                depth += 1
                braced = braced or t == "{"
            elif t in ")}]":
                depth -= 1
                if depth == 0 and t == "}" and _ends_at_brace(toks, i, j):
                    j += 1
                    break
            elif t == ";" and depth == 0:
                j += 1
                break
            j += 1
        span = toks[i:j]
        out.append(Item(_names(span), span))
        i = j
    return out


def _ends_at_brace(toks: list[Token], i: int, j: int) -> bool:
    """An item like `fn f() { … }` or `impl T { … }` ends at its closing brace; a `let x = { … };`
    or an expression `{ … }.len();` goes on to the `;`."""
    span = toks[i:j]
    k = _skip_attrs_and_vis(span)  # attributes and `pub(crate)` come before the item's word
    words = [t.text for t in span[k:] if t.is_ident][:4]
    if j + 1 < len(toks) and toks[j + 1].text in (".", "?", ";"):
        return False
    if not words or span[k:k + 1] and span[k].text == "{":
        return True  # a block statement `{ … }`
    if words[0] == "let":
        return False
    if k + 1 < len(span) and span[k].is_ident and span[k + 1].text == "!":
        return True  # a macro called with braces: `thread_local! { … }`
    lead = [w for w in words if w not in ("pub", "crate", "async", "unsafe", "extern")]
    return bool(lead) and (lead[0] in ITEM_WORDS | {"impl", "macro_rules"} or lead[0] in ("if", "for", "while", "loop", "match"))


def _names(span: list[Token]) -> set[str]:
    words = [t.text for t in span]
    names: set[str] = set()
    k = 0
    while k < len(words) and words[k] in ("pub", "(", "crate", ")", "#", "async", "unsafe", "extern"):
        k += 1
    if k >= len(words):
        return names
    head = words[k]
    if head == "let":
        for t in span[k + 1:]:
            if t.text in ("=", ":"):
                break
            if t.is_ident and t.text not in ("mut", "ref"):
                names.add(t.text)
    elif head in ITEM_WORDS and k + 1 < len(span) and span[k + 1].is_ident:
        names.add(span[k + 1].text)
    elif head == "macro_rules" and k + 2 < len(span):
        names.add(span[k + 2].text)
    elif head == "impl":
        depth = 0
        last_type = None
        for idx, t in enumerate(span[k + 1:], k + 1):
            if t.text == "{" and depth == 0:
                break
            depth += {"<": 1, ">": -1}.get(t.text, 0)
            if depth == 0 and t.is_ident and t.text not in ("for", "where", "dyn"):
                last_type = t.text
        if last_type:
            names.add(last_type)
        for a, b in zip(span, span[1:]):
            if a.text == "fn" and b.is_ident:
                names.add(b.text)
    return names


# ---------------------------------------------------------------------------------------------
# Constructs grading does not run

# Anywhere in the code.
DENIED = {
    "unsafe": "uses unsafe code",
    "extern": "declares foreign functions",
    "asm": "uses inline assembly",
    "global_asm": "uses inline assembly",
    "libc": "calls the C library directly",
    "spawn": "starts threads or processes",
    "Command": "starts processes",
    "File": "opens files",
    "OpenOptions": "opens files",
    "read_dir": "lists folders",
    "stdin": "reads the kernel's input",
    "set_hook": "replaces the panic hook (grading reports your panics with it)",
    "take_hook": "replaces the panic hook (grading reports your panics with it)",
    "include": "reads files while compiling",
    "include_str": "reads files while compiling",
    "include_bytes": "reads files while compiling",
    "option_env": "reads the environment while compiling",
    "no_mangle": "exports symbols",
    "export_name": "exports symbols",
    "link_section": "places code in linker sections",
}
# Only as a module in a path (`std::fs::read`, `use std::{fs, io}`): as a plain name (`let fs =
# …`) they are the student's own.
DENIED_MODULES = {
    "fs": "uses the file system",
    "io": "uses input and output streams directly (println! and eprintln! are fine)",
    "env": "reads the environment",
    "process": "controls processes",
    "thread": "starts or controls threads",
    "net": "uses the network",
    "os": "uses operating-system interfaces",
    "arch": "uses processor intrinsics",
    "ptr": "uses raw pointers",
    "intrinsics": "uses compiler intrinsics",
}


def denied(toks: list[Token]) -> list[tuple[str, int, str]]:
    """(word, line, why) for every construct that reaches outside the exercise: files, the
    environment, threads, processes, the kernel's own streams, unsafe and foreign code. Graded
    code runs in the same process as the tests; with these it could read the grader's files or
    speak the kernel's protocol, and the exercises need none of them."""
    found = []
    for i, t in enumerate(toks):
        nxt = toks[i + 1].text if i + 1 < len(toks) else ""
        prev = toks[i - 1].text if i else ""
        if t.text in DENIED:
            if t.text == "extern" and nxt == "crate":
                continue  # `extern crate x as y;` only renames a crate
            found.append((t.text, t.line, DENIED[t.text]))
        elif t.text == "env" and nxt == "!":
            found.append((t.text, t.line, "reads the environment while compiling"))
        elif t.text in DENIED_MODULES and (nxt == "::" or prev == "::" or _in_use_tree(toks, i)):
            found.append((t.text, t.line, DENIED_MODULES[t.text]))
    return found


def _in_use_tree(toks: list[Token], i: int) -> bool:
    """Is toks[i] inside a `use …;` declaration?"""
    j = i
    while j > 0 and toks[j - 1].text != ";":
        j -= 1
        if toks[j].text == "use":
            return True
    return False


def evcxr_commands(src: str) -> list[tuple[str, int]]:
    """evcxr's `:command` lines (`:dep`, `:clear`, …) with their line numbers."""
    return [(l.strip().split()[0], n) for n, l in enumerate(src.splitlines(), 1) if l.strip().startswith(":")]


# ---------------------------------------------------------------------------------------------
# The names a cell defines for the cells after it
#
# evcxr puts a cell's items (functions, macros, modules, types, `use`s) and its top-level `let`s
# into every later cell, so a name a student defines is in scope in the test cells that follow.
# Grading therefore needs every such name, written where it is defined: `definitions` lists
# them, and `hidden_definitions` the constructs whose names or effects cannot be read from the
# cell (glob imports, trait implementations, exported macros, macros that define items).

ITEM_DEFINERS = {"fn", "struct", "enum", "union", "trait", "type", "const", "static", "mod"}
# Words that may come before an item's keyword.
ITEM_PREFIXES = {"pub", "async", "unsafe", "extern", "default"}


@dataclass(frozen=True)
class Definition:
    name: str
    line: int
    kind: str  # fn, let, macro, mod, struct, use, method, …


def _skip_attrs_and_vis(span: list[Token], k: int = 0) -> int:
    """The index of the first token after `#[…]` attributes, `pub(…)` and item prefixes."""
    while k < len(span):
        t = span[k].text
        if t == "#":
            j = k + 1
            if j < len(span) and span[j].text == "!":
                j += 1
            if j < len(span) and span[j].text == "[":
                k = _close(span, j) + 1
                continue
            return k
        if t == "pub" and k + 1 < len(span) and span[k + 1].text == "(":
            k = _close(span, k + 1) + 1
            continue
        if t in ITEM_PREFIXES or t.startswith('"'):  # extern "C"
            k += 1
            continue
        if t == "const" and k + 1 < len(span) and span[k + 1].text in ("fn", "unsafe", "async", "extern"):
            k += 1  # const fn
            continue
        return k
    return k


def _close(toks: list[Token], i: int) -> int:
    """The index of the bracket that closes the one at toks[i] (or the last index)."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    opening, closing = toks[i].text, pairs.get(toks[i].text)
    depth = 0
    for j in range(i, len(toks)):
        if toks[j].text == opening:
            depth += 1
        elif toks[j].text == closing:
            depth -= 1
            if depth == 0:
                return j
    return len(toks) - 1


def _let_names(span: list[Token], k: int) -> list[Token]:
    """The names a `let` pattern binds (not the paths of its constructors: `Some(x)` binds x)."""
    out = []
    depth = 0
    for j in range(k, len(span)):
        t = span[j].text
        if depth == 0 and t in ("=", ":", ";", "else"):
            break
        depth += {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}.get(t, 0)
        nxt = span[j + 1].text if j + 1 < len(span) else ""
        prev = span[j - 1].text if j else ""
        if span[j].is_ident and t not in ("mut", "ref", "_") and nxt not in ("(", "{", "::", "!") and prev != "::":
            out.append(span[j])
    return out


def _use_names(span: list[Token], k: int) -> list[Token]:
    """The local names a `use` tree brings in (`use a::b as c` → c, `use a::{b, c::d}` → b, d)."""
    imp = Imports()
    j = k
    if j < len(span) and span[j].text == "::":
        j += 1
    _use_tree(span, j, [], imp)
    lines = {}
    for idx in range(k, len(span)):
        lines.setdefault(span[idx].text, span[idx])
    return [lines.get(name, Token(name, span[k - 1].line if k else 1)) for name in imp.aliases]


def _body_names(body: list[Token], kind: str) -> list[Definition]:
    """The associated items (methods, constants, types) of an `impl` or `trait` body."""
    out = []
    for it in items(body):
        k = _skip_attrs_and_vis(it.toks)
        if k + 1 < len(it.toks) and it.toks[k].text in ("fn", "const", "type") and it.toks[k + 1].is_ident:
            t = it.toks[k + 1]
            if t.text != "_":
                out.append(Definition(t.text, t.line, kind))
    return out


def _item_definitions(span: list[Token]) -> list[Definition]:
    """The names one top-level item or statement (a span of `items`) defines for later cells."""
    k = _skip_attrs_and_vis(span)
    if k >= len(span):
        return []
    head = span[k].text
    nxt = span[k + 1] if k + 1 < len(span) else None
    if head == "let":
        return [Definition(t.text, t.line, "let") for t in _let_names(span, k + 1)]
    if head == "use":
        return [Definition(t.text, t.line, "use") for t in _use_names(span, k + 1) if t.text != "_"]
    if head == "crate" and k and span[k - 1].text == "extern" and k + 1 < len(span):
        alias = span[k + 3] if k + 3 < len(span) and span[k + 2].text == "as" else span[k + 1]
        return [Definition(alias.text, alias.line, "extern crate")] if alias.is_ident and alias.text != "_" else []
    if head == "macro_rules" and k + 2 < len(span) and span[k + 1].text == "!":
        return [Definition(span[k + 2].text, span[k + 2].line, "macro")]
    if head == "static" and nxt is not None and nxt.text == "mut" and k + 2 < len(span):
        return [Definition(span[k + 2].text, span[k + 2].line, "static")]
    if head in ITEM_DEFINERS and nxt is not None and nxt.is_ident:
        out = [] if nxt.text == "_" else [Definition(nxt.text, nxt.line, head)]
        brace = next((j for j in range(k, len(span)) if span[j].text == "{"), None)
        if head == "mod" and brace is not None:
            out += definitions(span[brace + 1:_close(span, brace)])
        elif head == "trait" and brace is not None:
            out += _body_names(span[brace + 1:_close(span, brace)], "method")
        elif head == "enum" and brace is not None:
            pass  # variants are reached through the enum's name (a glob import is refused)
        return out
    if head == "impl":
        return []  # methods: see definitions (impls anywhere count)
    if span[k].is_ident and nxt is not None and nxt.text == "!":
        # a macro called where items go (`thread_local! { static NAME: … }`): the names that
        # follow an item's keyword inside it
        return [Definition(b.text, b.line, a.text) for a, b in zip(span[k + 2:], span[k + 3:])
                if a.text in ITEM_DEFINERS | {"macro_rules"} and b.is_ident]
    return []


def definitions(toks: list[Token]) -> list[Definition]:
    """Every name the code defines where a later cell sees it: top-level items and `let`s,
    `use` and `extern crate` names, the items inside its modules, and the methods, constants
    and types of every `impl` and `trait` block, wherever it is (an `impl` inside a function
    still gives its type those methods everywhere). Names defined inside function bodies and
    blocks are local and not listed.

        >>> [(d.name, d.kind) for d in definitions(tokens(
        ...     'macro_rules! assert { () => {} }\\nlet (a, mut b) = (1, 2);\\nuse x::{y as z, w};\\n'
        ...     'fn f() { let local = 1; impl T { fn abs(&self) {} } }'))]
        [('assert', 'macro'), ('a', 'let'), ('b', 'let'), ('z', 'use'), ('w', 'use'), ('f', 'fn'), ('abs', 'method')]
    """
    out: list[Definition] = []
    for it in items(toks):
        out += _item_definitions(it.toks)
    for i, t in enumerate(toks):
        if t.text == "impl" and (i == 0 or toks[i - 1].text != "dyn"):
            header_end = next((j for j in range(i, len(toks)) if toks[j].text in ("{", ";")), None)
            if header_end is not None and toks[header_end].text == "{":
                out += _body_names(toks[header_end + 1:_close(toks, header_end)], "method")
    return out


def _in_macro_rules(toks: list[Token]) -> list[tuple[str, int, int]]:
    """(name, first, last) token indices of each `macro_rules! name { … }` body."""
    out = []
    for i, t in enumerate(toks):
        if t.text == "macro_rules" and i + 3 < len(toks) and toks[i + 1].text == "!" and toks[i + 3].text in "({[":
            out.append((toks[i + 2].text, i + 3, _close(toks, i + 3)))
    return out


def hidden_definitions(toks: list[Token]) -> list[tuple[str, int, str]]:
    """(word, line, why) for each construct whose names or effects a reader of the cell cannot
    see where they are defined: glob imports, trait implementations (operators, comparisons and
    printing of a value then run the student's code), exported macros, and macros that define
    items (their names come from where they are used)."""
    found = []
    for i, t in enumerate(toks):
        if t.text == "use" and (i == 0 or toks[i - 1].text in (";", "}", "{", "pub", ")", "]")):
            j = i
            while j < len(toks) and toks[j].text != ";":
                if toks[j].text == "*":
                    found.append(("*", toks[j].line, "imports every name of a module (`use …::*`): import the "
                                                     "names you use one by one, so that each is written in your cell"))
                    break
                j += 1
        elif t.text == "impl" and (i == 0 or toks[i - 1].text != "dyn"):
            j, angle = i + 1, 0
            while j < len(toks) and toks[j].text not in ("{", ";"):
                angle += {"<": 1, ">": -1}.get(toks[j].text, 0)
                if toks[j].text == "for" and angle == 0 and not (j + 1 < len(toks) and toks[j + 1].text == "<"):
                    found.append(("impl … for", t.line, "implements a trait for a type, which changes what "
                                                        "operators, comparisons or printing do in the tests"))
                    break
                j += 1
        elif t.text == "macro_export":
            found.append((t.text, t.line, "exports a macro to the whole notebook"))
        elif t.text == "#" and i + 2 < len(toks) and toks[i + 1].text == "!" and toks[i + 2].text == "[":
            found.append(("#![…]", t.line, "sets an attribute for the whole notebook (`#![…]`)"))
    for name, first, last in _in_macro_rules(toks):
        for t in toks[first:last + 1]:
            if t.text in ITEM_DEFINERS | {"macro_rules", "use", "impl", "extern"}:
                found.append((t.text, t.line, f"has macro `{name}` define items (`{t.text}`), whose names "
                                              "would come from where it is used"))
                break
    return found
