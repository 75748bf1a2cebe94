use super::*;

fn f(name: &str, def_name: &str, signature: &str, doc: &str, exposed: bool) -> PyFunction {
    PyFunction {
        name: name.into(),
        def_name: def_name.into(),
        signature: signature.into(),
        doc: doc.into(),
        exposed,
    }
}

#[test]
fn finds_top_level_functions_with_signature_and_docstring() {
    let code = r#""""An interface."""
import torch

MODEL = load()  # def not_a_function():

@expose
def generate(prompt: str, max_new_tokens: int = 20) -> str:
    """Generates text.

    Args:
        prompt: the prompt.
    """
    return run(prompt)


@expose(name="probe")
async def probe_layer(
    layer: int,  # which block
    texts: list[str],
    scale: float = 1.0,
    sep: str = ", ",
) -> dict[str, float]:
    '''Probes one layer.'''
    def inner():
        """Not top level."""
    return {}

@expose()
def plain(): return 1

def helper(x):
    """Not exposed."""
    s = """
def fake():
    pass
"""
    return x

class C:
    @expose
    def method(self):
        pass

@other
@expose
def two_decorators(a, *, b=(1, 2)):
    "One line."
"#;
    assert_eq!(
        functions(code),
        [
            f(
                "generate",
                "generate",
                "(prompt: str, max_new_tokens: int = 20) -> str",
                "Generates text.\n\nArgs:\n    prompt: the prompt.",
                true
            ),
            f(
                "probe",
                "probe_layer",
                "(layer: int, texts: list[str], scale: float = 1.0, sep: str = \", \") -> dict[str, float]",
                "Probes one layer.",
                true
            ),
            f("plain", "plain", "()", "", true),
            f("helper", "helper", "(x)", "Not exposed.", false),
            f(
                "two_decorators",
                "two_decorators",
                "(a, *, b=(1, 2))",
                "One line.",
                true
            ),
        ]
    );
}

#[test]
fn expose_decorators() {
    for (decorator, want) in [
        ("expose", Some(None)),
        ("expose  # served", Some(None)),
        ("expose()", Some(None)),
        ("expose(name=\"x\")", Some(Some("x".to_string()))),
        ("expose( name = 'y' )", Some(Some("y".to_string()))),
        ("expose(timeout=3, name='z')", Some(Some("z".to_string()))),
        ("expose(rename='q')", Some(None)),
        ("exposed", None),
        ("other", None),
    ] {
        assert_eq!(expose_alias(decorator), want, "{decorator}");
    }
}
