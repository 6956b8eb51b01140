"""Is an answer the student's own? The crate the notebooks load holds the course's reference
for several exercises (`convlab::conv::convolve`, `train::cifar_cnn`, …): the tests compare with
it, so an answer that calls it would pass every test without doing the exercise.

Each answer cell of an answer notebook names what its answer may not use, in its metadata:

    "convlab": {"forbid": {"convlab::conv::convolve": "the reference the tests compare with"}}

An item is reached when the answer cell names it — directly, through `use … as …`, a nested
`use` tree, a glob import, `extern crate … as …` or a method call — or calls a helper that
reaches it, wherever the student defined that helper (another answer cell, or a cell they
added). The rest of the notebook may use the reference freely: comparing one's own convolution
with the fast one is part of the course.

    >>> cells = [Cell("your answer cell 'convolve'", "convolve",
    ...               "use convlab::conv as c;\\nfn convolve(a: &A, f: &A) -> A { c::convolve(a, f).unwrap() }")]
    >>> found = check({"convolve": {"convlab::conv::convolve": "the reference the tests compare with"}}, cells, [])
    >>> print(found["convolve"][0].message("convolve"))
    write convolve yourself: your answer cell 'convolve' uses convlab::conv::convolve (line 2, as `c::convolve`), the reference the tests compare with
"""
from __future__ import annotations

from dataclasses import dataclass

import rustscan


@dataclass(frozen=True)
class Cell:
    label: str  # how the feedback names it: "your answer cell 'convolve'", "the cell you added after cell 12"
    exercise: str | None  # the answer cell's grade_id; None for an added cell
    source: str


@dataclass(frozen=True)
class Violation:
    item: str
    reason: str
    cell: str
    line: int
    written: str  # the path as the student wrote it
    helper: str | None = None  # the helper through which the answer reaches the item

    def message(self, task: str) -> str:
        where = f"line {self.line}, as `{self.written}`"
        if self.helper:
            return (f"write {task} yourself: your answer calls `{self.helper}`, which uses {self.item} "
                    f"({self.cell}, {where}), {self.reason}")
        return f"write {task} yourself: {self.cell} uses {self.item} ({where}), {self.reason}"


def _split(path: str) -> list[str]:
    return [s for s in path.split("::") if s]


def _matches(full: list[str], item: list[str]) -> bool:
    """Does a resolved path name the forbidden item? The crate re-exports (the prelude, for
    one), so a path into the crate that ends like the item counts."""
    if not full or full[0] != item[0]:
        return False
    if len(item) >= 2 and item[-2][:1].isupper():  # an associated item: Type::name
        return full[-2:] == item[-2:]
    return full[-1] == item[-1]


# Items that can start a path (`name::…`): a `let` or a `fn` of the same name does not
# shadow the crate in `convlab::conv::convolve`.
PATH_HEADS = {"mod", "struct", "enum", "union", "trait", "type", "impl"}


def _resolve(segs: list[str], imports: rustscan.Imports, defined: set[str], depth: int = 0,
             modules: set[str] = frozenset()) -> list[list[str]]:
    """The full paths `segs` may stand for (several when glob imports could supply it).
    `defined`: the student's own names; `modules`: those of them that can start a path."""
    if depth > 6 or not segs:
        return []
    head = segs[0]
    own = modules if len(segs) > 1 else defined
    if head in ("crate", "self", "super", "Self") or head in own:
        return []  # the student's own items
    if head in imports.aliases:
        target = imports.aliases[head] + segs[1:]
        if target[0] == head:
            return [target]
        return _resolve(target, imports, defined, depth + 1, modules) or [target]
    out = [segs]  # as written: an extern crate by its own name (convlab::…)
    for g in imports.globs:
        out += _resolve(g + segs, imports, defined, depth + 1, modules) or [g + segs]
    return out


class Rules:
    """An exercise's forbid entries, each a crate item or a whole module. With the crate's
    public items (`api`, grading.crate_api) a path is followed to where its item is defined, so
    `convlab::conv` forbids every item of the module, re-exported anywhere, and every method of
    its types; without them an entry matches paths that end like it (the older rule)."""

    def __init__(self, items: set[str], api=None):
        self.api = api
        self.canon = {item: (api.canonical(_split(item)) if api else None) or item for item in items}

    def hits(self, full: list[str], item: str) -> str | None:
        """The item `full` names when the entry `item` forbids it (where it is defined, when
        that is known), else None."""
        if self.api is None or full[:1] != [self.canon[item].split("::")[0]]:
            return "::".join(full) if _matches(full, _split(item)) else None
        where = self.api.canonical(full)
        rule = self.canon[item]
        return where if where is not None and (where == rule or where.startswith(rule + "::")) else None

    def method_hits(self, name: str, item: str) -> bool:
        parts = _split(item)
        if len(parts) >= 2 and parts[-2][:1].isupper() and name == parts[-1]:
            return True  # an associated item named by its type: Type::name
        return self.api is not None and name in self.api.method_names_under(self.canon[item])


def check(forbid: dict[str, dict[str, str]], student: list[Cell], context: list[str],
          api=None, asked: dict[str, set[str]] | None = None) -> dict[str, list[Violation]]:
    """For each exercise (answer grade_id -> {item or module: reason}), the forbidden items its
    answer cell reaches. `student`: every cell the student wrote (answer cells and added cells);
    `context`: the notebook's own code cells, whose imports are in scope for the student; `api`:
    the crate's public items (grading.crate_api), which make a module entry cover all of it;
    `asked`: the names each exercise asks for. Another exercise's own function (the student's
    `multiply_sum` called by their `convolve`) is judged by its own exercise and does not carry
    what it reaches into this one: one mistake costs one exercise. Any other helper does."""
    toks = {c: rustscan.tokens(c.source) for c in student}
    imports = rustscan.Imports()
    for src in context:
        imports.merge(rustscan.imports(rustscan.tokens(src)))
    for c in student:
        imports.merge(rustscan.imports(toks[c]))
    items = [(c, it) for c in student for it in rustscan.items(toks[c])]
    defined = set().union(*(it.names for _, it in items)) if items else set()
    modules = set().union(*(it.names for _, it in items if it.kind in PATH_HEADS)) if items else set()
    wanted = {i for f in forbid.values() for i in f}
    rules = Rules(wanted, api)

    # What each item reaches on its own: (item, line, written)
    direct: dict[int, list[tuple[str, int, str]]] = {}
    for k, (cell, it) in enumerate(items):
        hits = []
        for ref in rustscan.paths(it.toks):
            written = ("." if ref.method else "") + "::".join(ref.segments)
            for item in wanted:
                if ref.method:
                    if ref.segments[0] not in defined and rules.method_hits(ref.segments[0], item):
                        hits.append((item, ref.line, written))
                    continue
                reached = [r for full in _resolve(list(ref.segments), imports, defined, modules=modules)
                           if (r := rules.hits(full, item))]
                if reached:
                    hits.append((item, ref.line, written if reached[0] in (item, written) else f"{written}`, which is `{reached[0]}"))
        direct[k] = hits

    # Helpers: an item that names another item's definition reaches what that one reaches.
    names = {k: it.names for k, (_, it) in enumerate(items)}
    uses = {k: {t.text for t in it.toks if t.is_ident} for k, (_, it) in enumerate(items)}
    reach: dict[int, dict[str, tuple[int, str | None]]] = {
        k: {h[0]: (k, None) for h in direct[k]} for k in direct}
    changed = True
    while changed:
        changed = False
        for k in reach:
            for m in reach:
                if m == k or not (names[m] & uses[k]) or names[m] & names[k]:
                    continue
                exercise = items[m][0].exercise
                if exercise not in (None, items[k][0].exercise) and names[m] <= (asked or {}).get(exercise, set()):
                    continue  # another exercise's asked-for function: judged there
                helper = sorted(names[m] & uses[k])[0]
                for item, (origin, _) in list(reach[m].items()):
                    if item not in reach[k]:
                        reach[k][item] = (origin, helper)
                        changed = True

    found: dict[str, list[Violation]] = {gid: [] for gid in forbid}
    for k, (cell, it) in enumerate(items):
        if cell.exercise not in forbid:
            continue
        for item, (origin, helper) in reach[k].items():
            if item not in forbid[cell.exercise]:
                continue
            ocell = items[origin][0]
            line, written = next((l, w) for i, l, w in direct[origin] if i == item)
            v = Violation(item, forbid[cell.exercise][item], ocell.label, line, written, helper)
            if all(f.item != item for f in found[cell.exercise]):
                found[cell.exercise].append(v)
    return found
