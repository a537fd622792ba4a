"""Nextflow's strict syntax (the default parser from Nextflow 26.04; `nextflow lint` checks it), checked
without Nextflow. The grammar is nf-lang's (nextflow-io/nextflow modules/nf-lang, ConfigParser.g4 and
ScriptParser.g4 with their AST builders):

- a config file holds only config statements: `includeConfig`, assignments (`a.b = expr`), blocks
  (`name { }`), selectors (`withLabel:x { }`) and, in `plugins { }`, `id '...'`. Variable declarations,
  `if` and `try` are rejected outside closures ("cannot be mixed with config statements"), and anything
  else (`import`, a function, a bare call) does not parse;
- a script (.nf) holds declarations only at its top level (include, process, workflow, function, params,
  feature flags, output): a statement there, `import`, `class`, `for`/`while` loops and `switch` are
  rejected everywhere, and a variable assigned in a function or a closure must be declared with `def`
  (processes and workflows may assign without `def` at their own level).

The checkers take text, so the tests run them on fixtures of each construct as well as on the pipeline's
files: they fail on the nextflow.config this pipeline shipped before (its top-level `def trace_timestamp`
made `nextflow run` and `nextflow config` fail under the strict parser). CI runs the real `nextflow lint`
(.github/workflows/linting.yml)."""
from __future__ import annotations

import re

import pytest

from conftest import ROOT

# nf-test.config is nf-test's own Groovy DSL, not a Nextflow config
CONFIGS = sorted([ROOT / "nextflow.config", *(ROOT / "conf").glob("*.config"), *(ROOT / "tests").glob("*.config")])
NF_FILES = sorted(p for p in ROOT.rglob("*.nf") if not {".venv", "work", ".nf-test"} & set(p.relative_to(ROOT).parts))


# ------------------------------------------------------------------ text without comments and strings

def code_only(text: str) -> str:
    """`text` with comments removed and the contents of strings (quoted, triple-quoted, slashy) emptied;
    quotes and newlines stay, so line numbers and statement shapes are kept."""
    out, i, n = [], 0, len(text)
    last = ""  # the last code character, to tell a slashy string from a division
    while i < n:
        two, three = text[i:i + 2], text[i:i + 3]
        if two == "//":
            i = text.find("\n", i) if "\n" in text[i:] else n
            continue
        if two == "/*":
            end = text.find("*/", i + 2)
            end = n if end < 0 else end + 2
            out.append("\n" * text.count("\n", i, end))
            i = end
            continue
        if three in ('"""', "'''"):
            end = text.find(three, i + 3)
            end = n if end < 0 else end + 3
            out.append(three[0] * 2 + "\n" * text.count("\n", i, end))
            i, last = end, three[0]
            continue
        char = text[i]
        slashy = char == "/" and (last == "" or last in "(,=~!:?[{;&|" or (out and "".join(out).rstrip().endswith("return")))
        if char in "'\"" or slashy:
            j = i + 1
            while j < n and text[j] != char and not (char != "/" and text[j] == "\n"):
                j += 2 if text[j] == "\\" else 1
            out.append(char * 2)
            i, last = j + 1, char
            continue
        out.append(char)
        if not char.isspace():
            last = char
        i += 1
    return "".join(out)


# ------------------------------------------------------------------ config files

CONFIG_OK = [
    re.compile(r"includeConfig\b"),
    re.compile(r"(?:\w+|''|\"\")(?:\s*\.\s*(?:\w+|''|\"\"))*\s*=(?!=)"),   # a.b.c = expr
    re.compile(r"(?:\w+|''|\"\")\s*\{"),                                   # block
    re.compile(r"with(?:Label|Name)\s*:\s*(?:[\w!|.*]+|''|\"\")\s*\{"),    # selector
    re.compile(r"\}"),
]
CONFIG_REJECTED = [
    (re.compile(r"def\b"), "variable or function declaration (`def`)"),
    (re.compile(r"(?:[A-Z]\w*(?:<[^>]*>)?(?:\[\])?)\s+\w+\s*(?:=|\()"), "typed variable or function declaration"),
    (re.compile(r"if\b"), "`if` statement"),
    (re.compile(r"else\b"), "`else` statement"),
    (re.compile(r"try\b"), "`try` block"),
    (re.compile(r"(?:catch|finally)\b"), "`catch` block"),
    (re.compile(r"import\b"), "`import` statement"),
    (re.compile(r"(?:for|while|do)\b"), "loop"),
    (re.compile(r"switch\b"), "`switch` statement"),
]


def continues(previous: str, line: str) -> bool:
    """Whether `line` carries on the expression of `previous` (a binary operator at the break)."""
    return bool(re.search(r"(?:[=?:+\-*/%&|,.(<>]|&&|\|\||\bin)\s*$", previous)) or \
        bool(re.match(r"\s*(?:\.|\?|:|&&|\|\||\+|-(?!-)|\*)", line))


def config_violations(text: str) -> list[str]:
    """Where a config text breaks the strict config grammar: `line N: what`. Config statements are checked
    at the top level and inside config blocks; closures (`{ ... }` after `=`, in an argument) may hold any
    statement."""
    code = code_only(text)
    problems = []
    stack: list[tuple[str, str]] = []   # (kind, block name): kind 'config' or 'expr'
    statement_start = True
    start_index, _start_line = 0, 1
    line_number, previous_line = 1, ""
    i = 0
    while i < len(code):
        char = code[i]
        config_level = all(kind == "config" for kind, _ in stack)
        if char == "\n":
            line_number += 1
            if config_level:
                line_end = code.find("\n", i + 1)
                line = code[i + 1:line_end if line_end >= 0 else len(code)]
                current = code[code.rfind("\n", 0, i) + 1:i]
                if current.strip():
                    previous_line = current
                statement_start = not (line.strip() and previous_line.strip() and continues(previous_line, line)
                                       and not previous_line.rstrip().endswith(("{", "}")))
            i += 1
            continue
        if config_level and statement_start and not char.isspace() and char != ";":
            statement_start = False
            start_index = i
            rest = code[i:code.find("\n", i) if "\n" in code[i:] else len(code)]
            block = stack[-1][1] if stack else ""
            problem = config_statement_problem(rest, block)
            if problem:
                problems.append(f"line {line_number}: {problem}: {rest.strip()[:60]}")
        if char == ";" and config_level:
            statement_start = True
        elif char == "{":
            head = code[start_index:i].strip()
            if config_level and re.fullmatch(r"(?:\w+|''|\"\")|with(?:Label|Name)\s*:\s*(?:[\w!|.*]+|''|\"\")", head):
                stack.append(("config", head))
                statement_start = True
            else:
                stack.append(("expr", ""))
        elif char in "([":
            stack.append(("expr", ""))
        elif char in ")]}" and stack:
            stack.pop()
        i += 1
    return problems


def config_statement_problem(statement: str, block: str) -> str | None:
    """Why one config statement is not allowed (None when it is)."""
    statement = statement.strip()
    if block == "plugins" and re.fullmatch(r"id\s+(?:''|\"\")", statement):
        return None
    for pattern, what in CONFIG_REJECTED:
        if pattern.match(statement):
            return f"{what} mixed with config statements"
    if any(pattern.match(statement) for pattern in CONFIG_OK):
        return None
    return "not a config statement (include, assignment, block or selector)"


# ------------------------------------------------------------------ scripts (.nf)

TOP_LEVEL_OK = re.compile(
    r"(?:include\s*\{|process\s+\w+\s*\{|workflow(?:\s+\w+)?\s*\{|def\s+\w+\s*\(|(?:[A-Z]\w*(?:<[^>]*>)?|def\s+[A-Z]\w*)"
    r"\s+\w+\s*\(|params\s*\{|params\.\w+(?:\.\w+)*\s*=|nextflow\.(?:enable|preview)\.\w+\s*=|output\s*\{|enum\s+\w+|"
    r"record\s+\w+|\})")


def script_violations(text: str) -> list[str]:
    """Where a Nextflow script breaks the strict script grammar: `line N: what`."""
    code = code_only(text.split("\n", 1)[1] if text.startswith("#!") else text)
    offset = 1 if text.startswith("#!") else 0
    lines = code.split("\n")
    problems = []
    for number, line in enumerate(lines, 1 + offset):
        for keyword, what in (("import", "Groovy `import` declarations are not supported"),
                              ("class", "classes are not supported")):
            if re.match(rf"\s*{keyword}\s+[\w.]+", line):
                problems.append(f"line {number}: {what}")
        for match in re.finditer(r"\b(for|while|switch)\s*\(", line):
            problems.append(f"line {number}: `{match.group(1)}` is no longer supported")
    problems += [f"line {n + offset}: {what}" for n, what in scoped_problems(code)]
    return problems


def scoped_problems(code: str) -> list[tuple[int, str]]:
    """Statements at the top level, and assignments to undeclared variables in functions and closures."""
    problems = []
    stack: list[str] = []  # 'process', 'workflow', 'function', 'block' (if/else/try body), 'closure', 'expr'
    declared: list[set[str]] = []  # per top-level declaration: names declared anywhere in it
    line_number, i, line_start = 1, 0, True
    while i < len(code):
        char = code[i]
        if char == "\n":
            line_number += 1
            line_start = True
            i += 1
            continue
        if line_start and not char.isspace():
            line_start = False
            rest = code[i:code.find("\n", i) if "\n" in code[i:] else len(code)]
            if not stack:
                if not TOP_LEVEL_OK.match(rest):
                    problems.append((line_number, "statements cannot be mixed with script declarations"))
                else:
                    end = matching_brace(code, i)
                    declared.append(declarations(code[i:end]))
            else:
                scope = next((kind for kind in reversed(stack) if kind != "block"), "")
                assigned = re.match(r"(\w+)\s*=(?!=)", rest)
                if assigned and scope in ("function", "closure") and stack[-1] in ("function", "closure", "block") \
                        and assigned.group(1) not in declared[-1]:
                    problems.append((line_number, f"`{assigned.group(1)}` was assigned but not declared (use `def`)"))
        if char == "{":
            head = code[code.rfind("\n", 0, i) + 1:i].strip()
            if not stack:
                kind = "process" if head.startswith("process") else "workflow" if head.startswith("workflow") else "function" \
                    if re.match(r"(?:def|[A-Z])", head) else "expr"
            elif re.match(r"(?:\}\s*)?(?:if|else|try|catch|finally)\b", head) and not head.endswith(("=", "(", ",")):
                kind = "block"
            else:
                kind = "closure"
            stack.append(kind)
        elif char in "([":
            stack.append("expr")
        elif char in ")]}" and stack:
            stack.pop()
        i += 1
    return problems


def matching_brace(code: str, start: int) -> int:
    """The end of the top-level declaration that starts at `start` (its closing brace, or its line)."""
    depth, i = 0, start
    while i < len(code):
        depth += code[i] in "{(["
        depth -= code[i] in "})]"
        if code[i] == "}" and depth == 0:
            return i + 1
        if code[i] == "\n" and depth == 0 and "{" not in code[start:i]:
            return i
        i += 1
    return len(code)


def declarations(code: str) -> set[str]:
    """Names a declaration makes available: `def` variables, function and closure parameters, and
    what a process or workflow assigns at its own level (implicitly declared there)."""
    names = set(re.findall(r"\bdef\s+(?:[A-Z]\w*(?:<[^>]*>)?\s+)?(\w+)\s*(?:=|$)", code, re.M))
    for group in re.findall(r"\bdef\s*\(([^)]*)\)", code):
        names |= set(re.findall(r"\w+", group))
    for params in re.findall(r"^\s*(?:def|[A-Z]\w*)\s+\w+\s*\(([^)]*)\)", code, re.M):
        names |= {p.split()[-1] for p in params.split(",") if p.strip()}
    for params in re.findall(r"\{\s*([\w\s,]+?)\s*->", code):
        names |= set(re.findall(r"\w+", params))
    if re.match(r"\s*(?:process|workflow)\b", code):
        names |= set(re.findall(r"^\s{4}(\w+)\s*=(?!=)", code, re.M))
        names |= set(re.findall(r"^\s{4}(\w+)\s*//", code, re.M))  # take: names
        names |= set(re.findall(r"(?:val|path)\(\s*(\w+)", code))
    return names


# ------------------------------------------------------------------ the pipeline's files

@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_config_files_hold_only_config_statements(path):
    assert config_violations(path.read_text()) == [], path


@pytest.mark.parametrize("path", NF_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_scripts_use_only_the_strict_grammar(path):
    assert script_violations(path.read_text()) == [], path


# ------------------------------------------------------------------ the checkers catch each construct

# nextflow.config as shipped before: a variable declared beside the timeline/report/trace/dag scopes
PRE_ISSUE_CONFIG = """
params {
    outdir              = null
    trace_report_suffix = null
}

// Disable process selector warnings by default. Use debug profile to enable warnings.
nextflow.enable.configProcessNamesValidation = false

def trace_timestamp = new java.util.Date().format( 'yyyy-MM-dd_HH-mm-ss')
timeline {
    enabled = true
    file    = "${params.outdir}/pipeline_info/execution_timeline_${params.trace_report_suffix ?: trace_timestamp}.html"
}
"""


def test_checker_rejects_the_pre_issue_config():
    assert config_violations(PRE_ISSUE_CONFIG) == [
        "line 10: variable or function declaration (`def`) mixed with config statements: "
        "def trace_timestamp = new java.util.Date().format( '')"]


@pytest.mark.parametrize(("text", "where"), [
    ("import groovy.json.JsonSlurper\nparams { a = 1 }\n", "line 1: `import`"),
    ("params { a = 1 }\nif (params.a) {\n    process.cpus = 2\n}\n", "line 2: `if`"),
    ("process {\n    def x = 1\n    cpus = x\n}\n", "line 2: variable or function"),
    ("String suffix = 'a'\n", "line 1: typed variable"),
    ("def check() {\n    return true\n}\n", "line 1: variable or function"),
    ("try {\n    includeConfig 'a.config'\n} catch (Exception e) {\n}\n", "line 1: `try`"),
    ("println 'hello'\n", "line 1: not a config statement"),
    ("profiles {\n    gpu {\n        for (x in [1]) { }\n    }\n}\n", "line 3: loop"),
])
def test_config_checker_flags_each_rejected_statement(text, where):
    problems = config_violations(text)
    assert problems and problems[0].startswith(where), problems


def test_config_checker_accepts_closures_and_config_forms():
    text = """
// a comment with def and if
includeConfig params.base && (!System.getenv('X') || !params.base.startsWith('http')) ? "${params.base}/a.config" : "/dev/null"
process {
    errorStrategy = { task.exitStatus in ((130..145) + 104) ? 'retry' : 'finish' }
    withLabel:process_gpu {
        containerOptions = {
            def engine = workflow.containerEngine
            if (engine == 'docker') { return '--gpus all' }
            return '--nv'
        }
    }
    withName: 'A|B' { ext.args = { [ "--x ${params.x}", ].join(' ') } }
}
profiles {
    test { includeConfig 'conf/test.config' }
}
plugins {
    id 'nf-schema@2.5.1'
}
manifest {
    description = \"\"\"def if import\"\"\"
    version     = '1.0.0dev'
}
env.X = "${projectDir}/a"
process.shell = [
    "bash",
    "-e"
]
params.x = params.y ?
    1 : 2
"""
    assert config_violations(text) == []


@pytest.mark.parametrize(("text", "where"), [
    ("import groovy.json.JsonOutput\nworkflow { }\n", "line 1: Groovy `import`"),
    ("workflow {\n    for (x in [1, 2]) { println x }\n}\n", "line 2: `for`"),
    ("def f(List xs) {\n    while (xs) { xs.pop() }\n}\n", "line 2: `while`"),
    ("def f(x) {\n    switch (x) { }\n}\n", "line 2: `switch`"),
    ("class Helper { }\n", "line 1: classes"),
    ("include { A } from './a'\nprintln 'top-level'\nworkflow { A() }\n", "line 2: statements cannot be mixed"),
    ("def f(x) {\n    y = x + 1\n    return y\n}\n", "line 2: `y` was assigned but not declared"),
    ("workflow {\n    channel.of(1).map { v ->\n        total = v\n    }\n}\n", "line 3: `total` was assigned"),
])
def test_script_checker_flags_each_rejected_construct(text, where):
    problems = script_violations(text)
    assert problems and problems[0].startswith(where), problems


def test_script_checker_accepts_declared_variables_and_implicit_process_variables():
    text = """#!/usr/bin/env nextflow
include { X } from './x'

process P {
    input:
    tuple val(meta), path(input)

    script:
    prefix = task.ext.prefix ?: "${meta.id}"
    def args = task.ext.args ?: ''
    \"\"\"
    for x in a b; do echo $x; done
    \"\"\"
}

workflow W {
    take:
    ch_in // channel

    main:
    ch_out = ch_in.map { meta, path ->
        def (a, b) = [ meta, path ]
        if (a) {
            def c = b
        }
        [ a, b ]
    }

    emit:
    out = ch_out
}

def f(String name, Map meta) {
    def key = name.replaceAll(/[^A-Z0-9]/, '')
    key = key.toLowerCase()
    meta.each { k, v ->
        def seen = k
    }
    return key
}
"""
    assert script_violations(text) == []
