"""Argo's small expression language (llmstep/local/expr.py), as ``when``, ``depends`` and
``retryStrategy.expression`` use it: literals, every operator, precedence, names and errors."""

from __future__ import annotations

import pytest

from llmstep.errors import WorkflowError
from llmstep.local import expr


def unknown(name: str):
    """A resolver that knows no name (a ``when`` after ``{{...}}`` substitution)."""
    return expr.UNKNOWN


def knowing(values: dict):
    """A resolver that knows ``values`` and nothing else."""
    return lambda name: values.get(name, expr.UNKNOWN)


def ev(text: str, values: dict | None = None):
    return expr.evaluate(text, knowing(values or {}))


# ---------------------------------------------------------------- literals and names


@pytest.mark.parametrize(
    "text, value",
    [
        ("'single quoted'", "single quoted"),
        ('"double quoted"', "double quoted"),
        ('"it\'s"', "it's"),
        ("''", ""),
        ("42", 42),
        ("-7", -7),
        ("1.5", 1.5),
        ("-0.25", -0.25),
        ("true", True),
        ("false", False),
        ("Succeeded", "Succeeded"),  # a word no one knows is its own text
        ("my-task.Succeeded", "my-task.Succeeded"),
    ],
)
def test_a_literal_is_its_value(text, value):
    result = expr.evaluate(text, unknown)
    assert result == value and type(result) is type(value)


def test_a_known_name_is_what_the_resolver_gives_and_an_unknown_one_its_text():
    seen = []

    def resolve(name):
        seen.append(name)
        return {"A.Succeeded": False, "lastRetry.exitCode": "3"}.get(name, expr.UNKNOWN)

    assert expr.evaluate("A.Succeeded", resolve) is False
    assert expr.evaluate("lastRetry.exitCode", resolve) == "3"
    assert expr.evaluate("heads", resolve) == "heads"
    assert seen == ["A.Succeeded", "lastRetry.exitCode", "heads"]


def test_true_false_and_asint_are_never_asked_of_the_resolver():
    asked = []
    expr.evaluate("true && !false && asInt('1') == 1", lambda n: asked.append(n) or expr.UNKNOWN)
    assert asked == []


def test_tokens_are_kinds_and_texts_whatever_the_spacing():
    expected = [
        ("word", "a.b"),
        ("op", "=="),
        ("str", "'x y'"),
        ("op", "&&"),
        ("op", "!"),
        ("op", "("),
        ("num", "-1"),
        ("op", "<="),
        ("num", "2.5"),
        ("op", ")"),
    ]
    assert expr.tokenize("a.b=='x y'&&!(-1<=2.5)") == expected
    assert expr.tokenize("  a.b ==\n 'x y'\t&& ! ( -1 <= 2.5 )  ") == expected


def test_names_are_the_bare_words_an_expression_uses_in_order():
    text = (
        "(A.Succeeded || my-task.Skipped) && !asInt(lastRetry.exitCode) == 1 && true && 'quoted' != false && A.Failed"
    )
    assert expr.names(text) == ["A.Succeeded", "my-task.Skipped", "lastRetry.exitCode", "A.Failed"]
    assert expr.names("'a' == \"b\" || 3 > 2") == []


# ---------------------------------------------------------------- comparisons


@pytest.mark.parametrize(
    "text, value",
    [
        ("1 == 1", True),
        ("1 == 2", False),
        ("10 == 10.0", True),
        ("1 != 2", True),
        ("2 != 2", False),
        ("1 < 2", True),
        ("2 < 2", False),
        ("-3 < -2", True),
        ("2 > 1", True),
        ("2 > 2", False),
        ("1.5 > 1", True),
        ("2 <= 2", True),
        ("3 <= 2", False),
        ("2 >= 2", True),
        ("1 >= 2", False),
        ("9 < 10", True),  # numbers, not text: '9' < '10' would be False
        ("'a' == 'a'", True),
        ("'a' != 'b'", True),
        ("'a' < 'b'", True),
        ("'b' >= 'c'", False),
        ("Succeeded == Succeeded", True),
        ("Succeeded != Succeeded", False),
        ("heads == 'heads'", True),
        ("'heads' == \"heads\"", True),
        ("true == true", True),
        ("true != false", True),
    ],
)
def test_each_comparison(text, value):
    assert expr.evaluate(text, unknown) is value


def test_a_number_and_a_text_compare_as_text_so_an_exit_code_matches_its_number():
    # Argo gives lastRetry.exitCode as text
    assert ev("lastRetry.exitCode == 1", {"lastRetry.exitCode": "1"}) is True
    assert ev("lastRetry.exitCode != 1", {"lastRetry.exitCode": "2"}) is True
    assert ev("'10' == 10") is True


def test_values_that_cannot_be_ordered_are_a_workflow_error():
    with pytest.raises(WorkflowError, match=r"^cannot compare None < None$"):
        expr.evaluate("a < b", lambda name: None)


# ---------------------------------------------------------------- logic and precedence


@pytest.mark.parametrize(
    "text, value",
    [
        ("true && true", True),
        ("true && false", False),
        ("false && true", False),
        ("true || false", True),
        ("false || false", False),
        ("false || true", True),
        ("!true", False),
        ("!false", True),
        ("!!true", True),
        ("!!!true", False),
        # && binds tighter than ||, either way round
        ("true || false && false", True),
        ("false && false || true", True),
        # ! binds tighter than && and ||
        ("!true || true", True),
        ("!false && false", False),
        # parentheses first
        ("(true || false) && false", False),
        ("!(false && false)", True),
        ("!(true || false) || false", False),
        ("((true))", True),
        # comparisons bind tighter than && and ||
        ("1 < 2 && 2 < 1", False),
        ("1 > 2 || 'a' == 'a'", True),
        ("1 == 1 && 2 == 2", True),
        # chains of the same operator read left to right
        ("true && true && false", False),
        ("false || false || true", True),
    ],
)
def test_logic_and_precedence(text, value):
    assert expr.evaluate(text, unknown) is value


def test_logic_gives_booleans_of_its_operands_truth():
    assert ev("'x' && 1") is True
    assert ev("'' || 0") is False
    assert ev("!''") is True


def test_a_depends_expression_reads_task_results():
    phases = {"A.Succeeded": False, "A.Skipped": True, "B.Failed": False, "C.Failed": True}
    assert ev("(A.Succeeded || A.Skipped) && !B.Failed", phases) is True
    assert ev("(A.Succeeded || A.Skipped) && !C.Failed", phases) is False
    assert ev("A.Succeeded || A.Skipped && C.Failed", phases) is True
    assert ev("(A.Succeeded || A.Skipped) && C.Failed && B.Failed", phases) is False


def test_a_retry_expression_reads_the_last_attempt():
    last = {"lastRetry.exitCode": "2", "lastRetry.status": "Failed", "lastRetry.duration": "12"}
    assert ev("asInt(lastRetry.exitCode) > 1 && lastRetry.status == 'Failed'", last) is True
    assert ev("asInt(lastRetry.exitCode) > 2 || lastRetry.status == Error", last) is False
    assert ev("asInt(lastRetry.duration) < 10", last) is False


# ---------------------------------------------------------------- asInt


@pytest.mark.parametrize(
    "text, value", [("asInt('12')", 12), ('asInt("-3")', -3), ("asInt(7)", 7), ("asInt((('5')))", 5)]
)
def test_asint_makes_a_number(text, value):
    result = expr.evaluate(text, unknown)
    assert result == value and type(result) is int


def test_asint_not_called_is_a_name():
    assert ev("asInt", {"asInt": "a variable"}) == "a variable"
    assert ev("asInt") == "asInt"


# ---------------------------------------------------------------- errors name the expression


@pytest.mark.parametrize(
    "text, message",
    [
        ("a & b", "cannot parse expression 'a & b' at '& b'"),
        ("a || b | c", "cannot parse expression 'a || b | c' at '| c'"),
        ("'open", 'cannot parse expression "\'open" at "\'open"'),
        ("timeout > 5s", "cannot parse expression 'timeout > 5s' at '5s'"),  # a duration is not a number
        ("1.2.3 == v", "cannot parse expression '1.2.3 == v' at '1.2.3 == v'"),
        ("a + 1", "cannot parse expression 'a + 1' at '+ 1'"),
        ("a b", "unexpected 'b' in expression 'a b'"),
        ("a == b == c", "unexpected '==' in expression 'a == b == c'"),
        ("a)", "unexpected ')' in expression 'a)'"),
        ("()", "unexpected ')' in expression '()'"),
        ("a && || b", "unexpected '||' in expression 'a && || b'"),
        ("(a", "expression '(a' ends too early"),
        ("a &&", "expression 'a &&' ends too early"),
        ("a ==", "expression 'a ==' ends too early"),
        ("!", "expression '!' ends too early"),
        ("", "expression '' ends too early"),
        ("asInt(a, b)", "expected ')' in expression 'asInt(a, b)', found ','"),
        ("asInt('x') > 1", "asInt('x') is not a number in \"asInt('x') > 1\""),
        ("asInt(1.5x)", "cannot parse expression 'asInt(1.5x)' at '1.5x)'"),
    ],
)
def test_an_expression_that_cannot_be_evaluated_is_a_workflow_error_naming_it(text, message):
    with pytest.raises(WorkflowError) as caught:
        expr.evaluate(text, unknown)
    assert str(caught.value) == message


def test_an_expression_that_does_not_tokenize_is_refused_before_it_is_evaluated():
    # argo_doc checks a retry expression with tokenize before any step runs; depends lists its names
    for check in (expr.tokenize, expr.names):
        with pytest.raises(WorkflowError, match=r"^cannot parse expression 'a & b' at '& b'$"):
            check("a & b")
