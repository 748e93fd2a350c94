"""Is this text source code, and in which language? A measured heuristic, no model.

``detect_code(text)`` returns the language name ("python", "javascript", "typescript", "java", "c", "cpp",
"csharp", "go", "rust", "shell", "sql", "html", "css", "php", "ruby") or None for prose. It looks, in order:

1. for a Markdown fence (```lang ... ```): the fence's tag, else the language of what is inside;
2. for a shebang (``#!/bin/bash``, ``#!/usr/bin/env python3``);
3. at the text itself: every language has a list of weighted line signatures (``def f(...):``, ``const x =``,
   ``public static void``, ``#include <...>``, ``SELECT ... FROM``, ``fn main()``...). The best-scoring language
   wins when its score reaches the threshold *and* enough of the lines look like code (end in ``; { } ) :``,
   start with a keyword, are indented, hold an operator between identifiers), so that prose that merely talks
   about code ("Write a function to find the minimum cost path") stays prose.

Precision and recall are measured on labelled real data (MBPP solutions and problem statements, banking77
utterances, the Alpaca seed outputs, hand-written snippets of each language) by
``tests/tools/data/test_clean.py`` and ``benchmarks/clean_quality.py``.
"""

from __future__ import annotations

import re
from functools import lru_cache

LANGUAGES = ("python", "javascript", "typescript", "java", "c", "cpp", "csharp", "go", "rust", "shell", "sql",
             "html", "css", "php", "ruby")

_FENCE = re.compile(r"```[ \t]*([\w+#.-]*)[^\n]*\n(.*?)(?:```|\Z)", re.S)
_FENCE_TAGS = {
    "py": "python", "python": "python", "python3": "python", "py3": "python", "ipython": "python",
    "js": "javascript", "javascript": "javascript", "jsx": "javascript", "node": "javascript", "mjs": "javascript",
    "ts": "typescript", "typescript": "typescript", "tsx": "typescript",
    "java": "java", "c": "c", "h": "c", "cpp": "cpp", "c++": "cpp", "cc": "cpp", "cxx": "cpp", "hpp": "cpp",
    "cs": "csharp", "csharp": "csharp", "c#": "csharp", "go": "go", "golang": "go", "rust": "rust", "rs": "rust",
    "sh": "shell", "bash": "shell", "shell": "shell", "zsh": "shell", "console": "shell", "shell-session": "shell",
    "sql": "sql", "mysql": "sql", "postgresql": "sql", "psql": "sql", "sqlite": "sql", "plsql": "sql",
    "html": "html", "xml": "html", "htm": "html", "css": "css", "scss": "css", "less": "css",
    "php": "php", "ruby": "ruby", "rb": "ruby",
}
_SHEBANG = re.compile(r"\A\s*#!\s*/\S*?(?:/env\s+)?(?:\S*/)?(\w+)")
_SHEBANG_LANG = {"bash": "shell", "sh": "shell", "zsh": "shell", "ksh": "shell", "dash": "shell",
                 "python": "python", "python3": "python", "python2": "python", "node": "javascript",
                 "ruby": "ruby", "php": "php", "perl": "shell"}

# Commands that start a shell line.
_SH = (r"(?:echo|cd|ls|mkdir|rm|cp|mv|grep|sed|awk|chmod|chown|apt-get|apt|yum|brew|pip3?|npm|npx|yarn|git|export|"
       r"source|curl|wget|tar|find|cat|touch|docker|kubectl|systemctl|ssh|scp|python3?|make|cmake|unset|cargo|go|"
       r"conda|virtualenv|sudo|printf|read|exit|kill|ps|df|du|which|whoami|rsync|unzip|zip|ln)")

# (pattern, weight) per language; each pattern counts once per text (presence, not frequency), so a long
# program does not outscore a short one merely by length.
_SIGNATURES: dict[str, list[tuple[str, float]]] = {
    "python": [
        (r"(?m)^\s*def \w+\s*\(.*\)\s*(->\s*[\w\[\], .]+)?:\s*(#.*)?$", 3),
        (r"(?m)^\s*class \w+(\([\w., ]*\))?:\s*$", 3),
        (r"(?m)^\s*(from [\w.]+ import [\w*, ()]+|import [\w.]+( as \w+)?(, [\w.]+)*)\s*$", 2.5),
        (r"(?m)^\s*(if|elif|while|for|with|try|except|else|finally)\b[^\n]*:\s*(#.*)?$", 1.5),
        (r"(?m)^\s*return\b", 1), (r"\bself\.\w+", 1.5), (r"\bprint\(", 1), (r"\b(None|True|False)\b", 0.5),
        (r"\bfor \w+(, \w+)* in [^\n]+:", 1.5), (r"\brange\(|\blen\(|\.append\(|\.join\(", 1),
        (r"\blambda\b[^:\n]*:", 1.5), (r"(?m)^\s*@\w+", 1), (r'"""|\'\'\'', 1), (r"(?m)^\s*\w+\s*=\s*\S", 0.5),
        (r"(?m)^\s*elif\b|\bnot in\b|\bis not None\b", 1.5), (r"\[[^\]\n]+ for \w+ in [^\]\n]+\]", 2),
    ],
    "javascript": [
        (r"(?m)^\s*(export\s+)?(const|let|var)\s+[\w${}\[\], ]+\s*=", 2.5),
        (r"\bfunction\s*\*?\s*[\w$]*\s*\([^)]*\)\s*\{", 3), (r"=>\s*[{(\w]", 1.5), (r"\bconsole\.\w+\(", 3),
        (r"\bdocument\.\w+|\bwindow\.\w+", 2), (r"\brequire\(['\"]", 2.5), (r"(?m)^\s*import .+ from ['\"]", 2.5),
        (r"\bmodule\.exports\b|\bexport default\b", 2.5), (r"===|!==", 1.5), (r"\.then\(|\basync\b|\bawait\b", 1),
        (r"\bnew (Date|Promise|Map|Set|Array)\(", 1.5), (r"(?m);\s*$", 0.5),
    ],
    "typescript": [
        (r"\b\w+\s*\??:\s*(string|number|boolean|any|void|unknown|never)(\[\])?\b", 2.5),
        (r"(?m)^\s*(export\s+)?(interface|type)\s+\w+(<[^>]*>)?\s*(=|\{)", 3), (r"\bas const\b", 2),
        (r"\b(public|private|readonly)\s+\w+\s*:", 1.5), (r"\bfunction\s+\w+\s*\([^)]*\)\s*:\s*[\w<>\[\]|]+\s*\{", 3),
    ],
    "java": [
        (r"\b(public|private|protected)\s+(static\s+)?(final\s+)?(class|interface|enum)\s+\w+", 3),
        (r"\b(public|private|protected)\s+(static\s+)?(final\s+)?[\w<>\[\],]+\s+\w+\s*\([^)]*\)", 2.5),
        (r"\bSystem\.out\.print", 3), (r"(?m)^\s*import java\.", 3), (r"\bString\[\]\s+\w+", 2),
        (r"@Override\b", 2), (r"\bnew \w+(<[^>]*>)?\(", 1), (r"\b(ArrayList|HashMap|List|Map)<", 1.5),
        (r"(?m);\s*$", 0.5),
    ],
    "c": [
        (r"(?m)^\s*#\s*include\s*[<\"]", 3), (r"(?m)^\s*#\s*define\s+\w+", 2.5),
        (r"\bint\s+main\s*\(", 3), (r"\bprintf\s*\(|\bscanf\s*\(", 2), (r"\bmalloc\s*\(|\bfree\s*\(|\bsizeof\s*\(", 2),
        (r"(?m)^\s*(static\s+)?(unsigned\s+)?(int|void|char|float|double|long|struct \w+)\s*\*?\s*\w+\s*\([^)]*\)\s*\{?\s*$", 3),
        (r"(?m);\s*$", 0.5),
    ],
    "cpp": [
        (r"\bstd::", 3), (r"\bcout\s*<<|\bcin\s*>>", 3), (r"#include\s*<(iostream|vector|string|map|algorithm)>", 3),
        (r"\btemplate\s*<", 2.5), (r"\bnamespace\s+\w+|\busing namespace\b", 2.5), (r"\bvector<", 2),
        (r"\bnullptr\b|\bauto\s+\w+\s*=", 1.5),
    ],
    "csharp": [
        (r"(?m)^\s*using System(\.\w+)*;", 3), (r"\bConsole\.Write(Line)?\(", 3),
        (r"\bstatic\s+(async\s+)?(void|Task)\s+Main\s*\(", 3), (r"\{\s*get;\s*(private\s+)?set;\s*\}", 4),
        (r"\b(public|private|internal)\s+(static\s+)?(async\s+)?(void|string|int|bool|Task<?[\w<>]*>?)\s+\w+\s*\(", 2),
        (r"\bvar\s+\w+\s*=\s*new\b", 1.5), (r"(?m)^\s*namespace\s+[\w.]+", 2),
    ],
    "go": [
        (r"(?m)^\s*package\s+\w+\s*$", 3), (r"(?m)^\s*func\s+(\(\w+\s+\*?\w+\)\s*)?\w+\s*\(", 3),
        (r"\w+\s*:=\s*", 2), (r"\bfmt\.\w+\(", 3), (r"(?m)^\s*import\s*\($", 2), (r"\berr\s*!=\s*nil\b", 3),
    ],
    "rust": [
        (r"(?m)^\s*(pub\s+)?fn\s+\w+\s*(<[^>]*>)?\s*\(", 3), (r"\blet\s+mut\s+\w+", 3), (r"\b(println|vec|format)!\(|\bvec!\[", 3),
        (r"(?m)^\s*impl\b", 2.5), (r"(?m)^\s*use\s+(std|crate)::", 3), (r"&mut\s+\w+|&str\b", 2),
        (r"\bmatch\s+\w+\s*\{", 1.5), (r"\b(Vec|Option|Result)<", 1.5),
    ],
    "shell": [
        (rf"(?m)^\s*(sudo\s+)?{_SH}(\s+-{{1,2}}[\w-]+)*\s+\S", 1.5),
        (rf"(?m)^\s*(sudo\s+)?{_SH}\b.*\n\s*(sudo\s+)?{_SH}\b", 2),  # two command lines in a row
        (r"\$\{\w+[^}]*\}|\$\(\s*\w|\$[1-9@#?]|\"\$\w+\"", 2), (r"(?m)^\s*(if|while)\s+\[\[?\s", 3),
        (r"(?m)^\s*(fi|done|esac|then|do)\s*$", 2.5), (r"\|\s*(grep|awk|sed|xargs|sort|uniq|wc|head|tail)\b", 2.5),
        (r"(?m)^\s*\w+=\S", 0.5), (r"(?m)^\s*for\s+\w+\s+in\s+[^\n:]*;\s*do\b", 1),
        (r"\s&&\s|\s2>&1|>\s*/dev/null", 1.5),
    ],
    "sql": [
        (r"\bSELECT\b[^;]+?\bFROM\b", 3), (r"(?i)\bselect\s+(\*|[\w.]+(\s*,\s*[\w.]+)*)\s+from\s+\w+", 3),
        (r"(?i)\binsert\s+into\s+\w+", 3), (r"(?i)\bcreate\s+(table|view|index|database)\b", 3),
        (r"(?i)\bupdate\s+\w+\s+set\s+\w+\s*=", 3), (r"(?i)\bdelete\s+from\s+\w+", 3),
        (r"\bWHERE\b|\bGROUP BY\b|\bORDER BY\b|\b(INNER |LEFT |RIGHT )?JOIN\b", 1.5), (r"(?m);\s*$", 0.5),
    ],
    "html": [
        (r"(?i)<!DOCTYPE html|<html\b", 7),
        (r"(?i)<(head|body|div|span|p|a|ul|ol|li|table|tr|td|form|input|button|script|style|h[1-6]|img|section|nav|title|meta|link)\b[^>]*>", 2),
        (r"</\w+>", 1.5),
    ],
    "css": [
        (r"(?m)^[ \t]*[\w.#*:\[\]=\"'>+~, -]+\{[ \t]*$", 1.5),
        (r"(?m)^\s*[\w-]+\s*:\s*[^;{}\n]+;\s*$", 1.5), (r"@media\b|@import\b|@keyframes\b", 2.5),
        (r"\b(color|margin|padding|font-size|display|background(-color)?|border|width|height)\s*:", 2),
    ],
    "php": [
        (r"<\?php", 4), (r"(?m)^\s*\$\w+\s*=", 2), (r"\becho\s+[\"'$]", 1.5), (r"\bfunction\s+\w+\s*\(\s*\$", 3),
        (r"\$this->", 3), (r"\barray\(|\bforeach\s*\(\s*\$", 2),
    ],
    "ruby": [
        (r"(?m)^\s*def\s+\w+[?!]?(\s*\([^)]*\))?\s*$", 2.5), (r"(?m)^\s*end\s*$", 2), (r"(?m)^\s*puts\s", 2.5),
        (r"\.each(_with_index)?\s+do\s*\|", 3), (r"\bdo\s*\|\w+(,\s*\w+)*\|", 2.5), (r"\battr_(accessor|reader)\b", 3),
        (r"(?m)^\s*require\s+['\"]", 2), (r"\bnil\b|\belsif\b", 1.5), (r"(?m)^\s*(module|class)\s+[A-Z]\w*(\s*<\s*\w+)?\s*$", 1.5),
    ],
}

# How a single line looks like code rather than prose.
_CODE_LINE = re.compile(
    r"""^\s*(?:
        .*[;{}]\s*(?://.*|/\*.*)?$                                  # ends in ; { } (maybe a trailing comment)
      | .*\)\s*:?\s*$                                             # ends in ) or ):
      | (?:def|class|if|elif|else|for|while|return|import|from|try|except|with|fn|let|const|var|func|package|
           public|private|protected|static|void|int|echo|print|puts|end|fi|done|do|then|SELECT|FROM|WHERE|
           INSERT|UPDATE|CREATE|DELETE|\#include|\#define|using|namespace|switch|case|break|continue|yield|
           async|await|raise|throw|catch|finally|elsif|unless|module|require|export|local)\b.*
      | </?[a-zA-Z][\w-]*[^>]*>.*                                 # markup
      | [\w.$\[\]"']+\s*(?:[-+*/%|&^]?=|:=|->|=>|<<|>>)\s*\S.*   # assignment / arrow / stream
      | (?://|\#|--|/\*|\*)\s?.*                                  # comment
      | [\w.$]+\(.*\)\s*;?\s*$                                    # a call on its own
      | [\]\)}]+[;,)]*\s*$                                        # closing brackets
      | \s{2,}\S.*                                                # indented
      | (?:sudo\s+)?""" + _SH + r"""\s+\S.*                       # a shell command
      | (?i:select|from|where|insert|update|create|delete|drop|alter)\s+\S.*  # SQL in any case
      | \S+(?:\s+-{1,2}[a-zA-Z][\w-]*)+(?:\s.*)?                   # a command with options
      | \S+.*\s\|\s*\w+.*                                          # a pipe
    )""", re.X)
_WORD = re.compile(r"[A-Za-z]{2,}")
_SENTENCE_END = re.compile(r"[A-Za-z][.!?]['\")]?\s*$")
_SYMBOLS = set("{}[]()<>=;:$#@&|*+/\\%^~`\"'-")


_SYMBOL_RE = re.compile("[" + re.escape("".join(sorted(_SYMBOLS))) + "]")


@lru_cache(maxsize=1)
def _compiled() -> dict[str, list[tuple[re.Pattern[str], float]]]:
    return {lang: [(re.compile(p), w) for p, w in sigs] for lang, sigs in _SIGNATURES.items()}


# Score a text needs in its best language, and the share of its lines that must look like code.
MIN_SCORE = 3.0
MIN_CODE_LINE_FRACTION = 0.5
# A text whose signature score is this high is code whatever its lines look like (a program with long comments).
STRONG_SCORE = 7.0


def language_scores(text: str) -> dict[str, float]:
    """Weighted signature score of each language (0 omitted)."""
    out: dict[str, float] = {}
    for lang, sigs in _compiled().items():
        s = sum(w for rx, w in sigs if rx.search(text))
        if s:
            out[lang] = s
    return out


def code_line_fraction(text: str) -> float:
    """Share of non-empty lines that look like code and not like a sentence."""
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return 0.0
    code = 0
    for ln in lines:
        if _SENTENCE_END.search(ln) and len(_WORD.findall(ln)) >= 6:
            continue  # a sentence, even if indented or starting with a keyword
        if _CODE_LINE.match(ln):
            code += 1
    return code / len(lines)


def _refine(lang: str, scores: dict[str, float]) -> str:
    """Families that share syntax: TypeScript is JavaScript with types, C++ is C with more."""
    if lang == "javascript" and scores.get("typescript", 0) >= 2.5:
        return "typescript"
    if lang == "typescript" and not scores.get("javascript") and scores["typescript"] < 3:
        return "javascript"
    if lang == "c" and scores.get("cpp", 0) >= 2.5:
        return "cpp"
    return lang


def _best(text: str) -> tuple[str | None, float]:
    scores = language_scores(text)
    if not scores:
        return None, 0.0
    # TypeScript and C++ extend JavaScript and C: score the family together before choosing
    merged = dict(scores)
    if "typescript" in merged:
        merged["typescript"] += merged.get("javascript", 0)
    if "cpp" in merged:
        merged["cpp"] += merged.get("c", 0)
    lang = max(merged, key=lambda k: (merged[k], -LANGUAGES.index(k)))
    return _refine(lang, scores), merged[lang]


def detect_code(text: str) -> str | None:
    """The programming language of ``text`` when it is (or holds fenced) source code, else None."""
    if not text or not text.strip():
        return None
    if "```" in text:
        m = _FENCE.search(text)
        if m:
            tag = m.group(1).lower()
            if tag in _FENCE_TAGS:
                return _FENCE_TAGS[tag]
            inner, _ = _best(m.group(2))
            return inner or "unknown"
    head = text.lstrip()[:2]
    if head == "#!":
        m = _SHEBANG.match(text)
        if m:
            return _SHEBANG_LANG.get(m.group(1).rstrip("0123456789.") or m.group(1), "shell")
    if "<?php" in text:
        return "php"
    # quick exit: prose without any code punctuation
    if _SYMBOL_RE.search(text) is None:
        return None
    lang, score = _best(text)
    if lang is None or score < MIN_SCORE:
        return None
    if score >= STRONG_SCORE:
        return lang
    return lang if code_line_fraction(text) >= MIN_CODE_LINE_FRACTION else None


def is_code(text: str) -> bool:
    """True when ``text`` is source code (see ``detect_code``)."""
    return detect_code(text) is not None
