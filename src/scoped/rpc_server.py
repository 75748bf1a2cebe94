"""seer's RPC server for a ScopedSandbox (standard library only, Python >= 3.9).

Loads an interface file whose functions are marked with ``@expose`` and serves them over
HTTP on 127.0.0.1. The interface runs with ``expose``, ``get_model_path`` and
``list_configured_models`` in its globals; its module-level code runs once, at start.

Usage:
    python rpc_server.py --interface FILE --ready-file FILE [--init-file FILE]
    python rpc_server.py --interface FILE --describe     # print the function specs

Environment:
    SEER_RPC_TOKEN   the token every request must carry (``Authorization: Bearer ...``)
    SEER_MODELS      JSON list of {name, path, var_name, ...}: the sandbox's models

Endpoints (JSON in and out; every one needs the token, else 401 without one, 403 with a
wrong one):
    GET  /functions  -> {"functions": [spec, ...]}
    POST /call       {"function": name, "args": {...}} -> {"result": value}
Errors come back as {"error": {"kind", "type", "message", "traceback"}} with status 400
(bad request, unknown function, bad arguments) or 500 (the function raised, or returned
something JSON cannot represent).
"""

import argparse
import ast
import collections.abc
import hmac
import inspect
import json
import math
import os
import re
import sys
import threading
import traceback
import types
import typing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

try:
    from typing import Literal
except ImportError:  # pragma: no cover
    Literal = None

EXPOSED = {}


class ExposeError(Exception):
    """An exposed function that cannot be served (its signature or type hints)."""


class Unsupported(Exception):
    pass


def expose(fn=None, *, name=None):
    """Marks a function as part of the interface: ``@expose`` or ``@expose(name="x")``."""

    def mark(f):
        if not callable(f):
            raise ExposeError(f"@expose needs a function, got {type(f).__name__}")
        key = name or f.__name__
        if key in EXPOSED and EXPOSED[key] is not f:
            raise ExposeError(f"@expose: two functions are exposed as `{key}`")
        EXPOSED[key] = f
        return f

    if fn is None:
        return mark
    return mark(fn)


# ---------------------------------------------------------------------------------------
# Models


def _models():
    try:
        return json.loads(os.environ.get("SEER_MODELS") or "[]")
    except ValueError:
        return []


def list_configured_models():
    """The names of the models configured for this sandbox, in configuration order."""
    return [m["name"] for m in _models()]


def get_model_path(name):
    """The local folder of a configured model (by its configured name or var_name)."""
    for m in _models():
        if name in (m.get("name"), m.get("var_name")):
            return m["path"]
    known = ", ".join(repr(n) for n in list_configured_models()) or "none"
    raise KeyError(
        f"get_model_path: no configured model named {name!r}; configured models: {known}"
    )


# ---------------------------------------------------------------------------------------
# Type hints -> JSON schema

_UNION_TYPES = (typing.Union,) + ((types.UnionType,) if hasattr(types, "UnionType") else ())
_SEQUENCES = (list, tuple, set, frozenset, collections.abc.Sequence, collections.abc.Iterable)
_MAPPINGS = (dict, collections.abc.Mapping)


def type_schema(t):
    """The JSON schema of a type hint; raises Unsupported for what JSON cannot carry."""
    if t is inspect.Parameter.empty or t is typing.Any or t is object:
        return {}
    if t is None or t is type(None):
        return {"type": "null"}
    if t is bool:
        return {"type": "boolean"}
    if t is int:
        return {"type": "integer"}
    if t is float:
        return {"type": "number"}
    if t is str:
        return {"type": "string"}
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin in _UNION_TYPES:
        options = [a for a in args if a is not type(None)]
        schemas = [type_schema(a) for a in options]
        if len(options) < len(args):
            schemas.append({"type": "null"})
        return {"anyOf": schemas}
    if Literal is not None and origin is Literal:
        return {"enum": list(args)}
    if t in _SEQUENCES or origin in _SEQUENCES:
        schema = {"type": "array"}
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            schema["prefixItems"] = [type_schema(a) for a in args]
            schema["minItems"] = schema["maxItems"] = len(args)
        elif args:
            schema["items"] = type_schema(args[0])
        return schema
    if t in _MAPPINGS or origin in _MAPPINGS:
        schema = {"type": "object"}
        if len(args) == 2:
            if args[0] is not str:
                raise Unsupported(f"{_type_name(t)} (JSON object keys are strings)")
            value = type_schema(args[1])
            if value:
                schema["additionalProperties"] = value
        return schema
    raise Unsupported(_type_name(t))


def _type_name(t):
    if isinstance(t, type):
        return t.__name__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"
    return str(t).replace("typing.", "")


def check_value(value, t, where):
    """The value for a parameter of type t (ints become floats), or raises TypeError."""
    if t is inspect.Parameter.empty or t is typing.Any or t is object:
        return value
    if t is None or t is type(None):
        if value is None:
            return value
        raise TypeError(f"{where} must be None, got {_value_type(value)}")
    if t is bool:
        if isinstance(value, bool):
            return value
        raise TypeError(f"{where} must be a bool, got {_value_type(value)}")
    if t is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise TypeError(f"{where} must be an int, got {_value_type(value)}")
    if t is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise TypeError(f"{where} must be a float, got {_value_type(value)}")
    if t is str:
        if isinstance(value, str):
            return value
        raise TypeError(f"{where} must be a str, got {_value_type(value)}")
    origin = typing.get_origin(t)
    args = typing.get_args(t)
    if origin in _UNION_TYPES:
        for a in args:
            try:
                return check_value(value, a, where)
            except TypeError:
                pass
        raise TypeError(f"{where} must be {_type_name(t)}, got {_value_type(value)}")
    if Literal is not None and origin is Literal:
        if value in args:
            return value
        raise TypeError(f"{where} must be one of {list(args)!r}, got {value!r}")
    if t in _SEQUENCES or origin in _SEQUENCES:
        if not isinstance(value, list):
            raise TypeError(f"{where} must be a list, got {_value_type(value)}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise TypeError(f"{where} must have {len(args)} items, got {len(value)}")
            return tuple(check_value(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        if args:
            value = [check_value(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
        if origin is tuple or t is tuple:
            return tuple(value)
        return value
    if t in _MAPPINGS or origin in _MAPPINGS:
        if not isinstance(value, dict):
            raise TypeError(f"{where} must be a dict, got {_value_type(value)}")
        if len(args) == 2:
            return {k: check_value(v, args[1], f"{where}[{k!r}]") for k, v in value.items()}
        return value
    return value


def _value_type(v):
    return {dict: "dict", list: "list", str: "str", bool: "bool", int: "int", float: "float",
            type(None): "None"}.get(type(v), type(v).__name__)


# ---------------------------------------------------------------------------------------
# Docstrings

_SECTIONS = {
    "args": "args", "arguments": "args", "parameters": "args", "params": "args",
    "keyword args": "args", "keyword arguments": "args", "other parameters": "args",
    "returns": "returns", "return": "returns", "yields": "returns",
}
_OTHER_SECTIONS = {"raises", "example", "examples", "note", "notes", "see also", "references",
                   "warning", "warnings", "attributes", "todo"}
_GOOGLE_HEADER = re.compile(r"^\s*([A-Za-z][A-Za-z ]*?)\s*:\s*$")
_NUMPY_RULE = re.compile(r"^\s*-{3,}\s*$")
_GOOGLE_ENTRY = re.compile(r"^\s*\*{0,2}(\w+)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_NUMPY_ENTRY = re.compile(r"^\s*\*{0,2}(\w+)\s*(?::\s*.*)?$")
_SPHINX_PARAM = re.compile(r"^\s*:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")
_SPHINX_RETURNS = re.compile(r"^\s*:returns?\s*:\s*(.*)$")
_SPHINX_OTHER = re.compile(r"^\s*:(type|rtype|raises?)\b.*:")


def _section_header(lines, i):
    """(kind, style, lines consumed) if a section starts at line i."""
    line = lines[i]
    if i + 1 < len(lines) and _NUMPY_RULE.match(lines[i + 1]) and line.strip():
        name = line.strip().lower()
        if name in _SECTIONS or name in _OTHER_SECTIONS:
            return _SECTIONS.get(name, "other"), "numpy", 2
    m = _GOOGLE_HEADER.match(line)
    if m:
        name = m.group(1).strip().lower()
        if name in _SECTIONS or name in _OTHER_SECTIONS:
            return _SECTIONS.get(name, "other"), "google", 1
    return None


def parse_docstring(doc):
    """(description, {param: description}, returns) of a Google, NumPy or Sphinx docstring."""
    lines = (doc or "").expandtabs().splitlines()
    description, params, returns = [], {}, []
    kind = style = None
    header_indent = 0
    entry_indent = None
    current = None
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        indent = len(line) - len(line.lstrip())
        header = _section_header(lines, i)
        if header:
            kind, style, consumed = header
            header_indent, entry_indent, current = indent, None, None
            i += consumed
            continue
        sp = _SPHINX_PARAM.match(line)
        sr = _SPHINX_RETURNS.match(line)
        if sp or sr or _SPHINX_OTHER.match(line):
            kind, style, header_indent = ("args" if sp else "returns" if sr else "other",
                                          "sphinx", indent)
            current = sp.group(1) if sp else None
            if sp:
                params[current] = sp.group(2).strip()
            elif sr:
                returns.append(sr.group(1).strip())
            i += 1
            continue
        i += 1
        if kind is None:
            description.append(line)
            continue
        if not stripped:
            continue
        if style in ("google", "sphinx") and indent <= header_indent:
            kind = None
            description.append(line)
            continue
        if kind == "args":
            if style == "sphinx":
                if current:
                    params[current] = (params[current] + " " + stripped).strip()
                continue
            if entry_indent is None:
                entry_indent = indent
            m = (_GOOGLE_ENTRY if style == "google" else _NUMPY_ENTRY).match(line)
            if indent <= entry_indent and m:
                current = m.group(1)
                params[current] = (m.group(2) if style == "google" else "").strip()
            elif current:
                params[current] = (params[current] + " " + stripped).strip()
        elif kind == "returns":
            returns.append(stripped)
    return "\n".join(description).strip(), params, " ".join(returns).strip()


# ---------------------------------------------------------------------------------------
# Function specs


def _json_default(v):
    try:
        json.dumps(v, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def _literal_repr(v):
    try:
        r = repr(v)
        if ast.literal_eval(r) == v:
            return r
    except Exception:
        pass
    return None


def _annotation_text(fn, p_name, raw):
    text = raw if isinstance(raw, str) else inspect.formatannotation(raw)
    try:
        compile(text, "<annotation>", "eval")
        return text
    except SyntaxError:
        return None


def _docstring_literal(doc):
    if '"""' not in doc and "\\" not in doc and not doc.endswith('"'):
        return '"""' + doc + '\n"""' if "\n" in doc else '"""' + doc + '"""'
    return repr(doc)


def function_spec(name, fn):
    """What clients need to know about one exposed function: schema, docs, client stub."""
    where = f"exposed function `{name}`"
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError) as e:
        raise ExposeError(f"{where}: cannot read its signature: {e}")
    try:
        hints = typing.get_type_hints(fn)
    except Exception as e:
        raise ExposeError(f"{where}: its type hints cannot be evaluated: {type(e).__name__}: {e}")
    doc = inspect.getdoc(fn) or ""
    description, param_docs, returns = parse_docstring(doc)
    summary = description.split("\n\n")[0].replace("\n", " ").strip()
    properties, required, stub_params = {}, [], []
    kw_only_marked = False
    for p in sig.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            raise ExposeError(f"{where}: *{p.name} / **{p.name} parameters cannot be exposed; "
                              "list the parameters by name")
        if p.kind == p.POSITIONAL_ONLY:
            raise ExposeError(f"{where}: positional-only parameter `{p.name}` cannot be exposed "
                              "(arguments arrive by name); remove the `/`")
        hint = hints.get(p.name, inspect.Parameter.empty)
        try:
            schema = type_schema(hint)
        except Unsupported as u:
            raise ExposeError(f"{where}: parameter `{p.name}` has type {u}, which JSON cannot "
                              "carry; use int, float, str, bool, list[...], dict[str, ...], "
                              "Optional[...] or Literal[...]")
        schema = dict(schema)
        if param_docs.get(p.name):
            schema["description"] = param_docs[p.name]
        if p.default is p.empty:
            required.append(p.name)
        elif _json_default(p.default):
            schema["default"] = p.default
        properties[p.name] = schema
        if p.kind == p.KEYWORD_ONLY and not kw_only_marked:
            stub_params.append("*")
            kw_only_marked = True
        text = p.name
        ann = _annotation_text(fn, p.name, p.annotation) if p.annotation is not p.empty else None
        if ann:
            text += f": {ann}"
        if p.default is not p.empty:
            lit = _literal_repr(p.default)
            text += (" = " if ann else "=") + (lit if lit is not None else "_SERVER_DEFAULT")
        stub_params.append(text)
    ret_hint = hints.get("return", inspect.Parameter.empty)
    try:
        returns_schema = type_schema(ret_hint)
    except Unsupported:
        returns_schema = {}
    ret_ann = (_annotation_text(fn, "return", sig.return_annotation)
               if sig.return_annotation is not sig.empty else None)
    signature = f"({', '.join(stub_params)})" + (f" -> {ret_ann}" if ret_ann else "")
    call_args = ", ".join(f"{p!r}: {p}" for p in properties)
    body = [f"def {name}{signature}:"]
    if doc:
        body.append("    " + _docstring_literal(doc).replace("\n", "\n    "))
    body.append(f"    return _call({name!r}, {{{call_args}}})")
    stub = "\n".join(line.rstrip() for line in "\n".join(body).split("\n")) + "\n"
    return {
        "name": name,
        "signature": signature,
        "summary": summary,
        "description": description,
        "doc": doc,
        "returns": returns,
        "returns_schema": returns_schema,
        "parameters": {"type": "object", "properties": properties, "required": required,
                       "additionalProperties": False},
        "stub": stub,
        "param_names": list(properties),
    }


# ---------------------------------------------------------------------------------------
# Calls


class CallError(Exception):
    def __init__(self, status, kind, type_, message, tb=""):
        super().__init__(message)
        self.status, self.kind, self.type, self.message, self.tb = status, kind, type_, message, tb

    def payload(self):
        return {"error": {"kind": self.kind, "type": self.type, "message": self.message,
                          "traceback": self.tb}}


def find_unserializable(value, path="result", depth=0):
    """(path, description) of the first part of value JSON cannot represent, or None."""
    if depth > 200:
        return path, "nested too deeply"
    if value is None or isinstance(value, (bool, int, str)):
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"the float {value!r}")
    if isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            bad = find_unserializable(v, f"{path}[{i}]", depth + 1)
            if bad:
                return bad
        return None
    if isinstance(value, dict):
        for k, v in value.items():
            if not isinstance(k, str):
                return f"{path}", f"a dict key of type {_type_name(type(k))} ({k!r})"
            bad = find_unserializable(v, f"{path}[{k!r}]", depth + 1)
            if bad:
                return bad
        return None
    return path, f"of type {_type_name(type(value))}"


class Interface:
    def __init__(self, functions):
        self.functions = functions
        self.specs = {name: function_spec(name, fn) for name, fn in functions.items()}
        self.lock = threading.Lock()

    def call(self, request):
        if not isinstance(request, dict) or not isinstance(request.get("function"), str):
            raise CallError(400, "bad_request", "BadRequest",
                            'the body must be {"function": name, "args": {...}}')
        name = request["function"]
        args = request.get("args") or {}
        fn = self.functions.get(name)
        if fn is None:
            known = ", ".join(sorted(self.functions)) or "none"
            raise CallError(400, "no_such_function", "NoSuchFunction",
                            f"no exposed function `{name}`; exposed: {known}")
        if not isinstance(args, dict):
            raise CallError(400, "bad_arguments", "TypeError",
                            f"`{name}`: args must be a map of parameter name to value")
        spec = self.specs[name]
        props = spec["parameters"]["properties"]
        unknown = [k for k in args if k not in props]
        if unknown:
            raise CallError(400, "bad_arguments", "TypeError",
                            f"`{name}{spec['signature']}` got unexpected argument(s) "
                            f"{', '.join(unknown)}")
        missing = [k for k in spec["parameters"]["required"] if k not in args]
        if missing:
            raise CallError(400, "bad_arguments", "TypeError",
                            f"`{name}{spec['signature']}` is missing required argument(s) "
                            f"{', '.join(missing)}")
        hints = typing.get_type_hints(fn)
        checked = {}
        for k, v in args.items():
            try:
                checked[k] = check_value(v, hints.get(k, inspect.Parameter.empty),
                                         f"argument `{k}`")
            except TypeError as e:
                raise CallError(400, "bad_arguments", "TypeError", f"`{name}`: {e}")
        with self.lock:
            try:
                result = fn(**checked)
            except Exception as e:
                raise CallError(500, "exception", type(e).__qualname__ if type(e).__module__ == "builtins"
                                else f"{type(e).__module__}.{type(e).__qualname__}",
                                error_message(e), "".join(traceback.format_exception(
                                    type(e), e, e.__traceback__.tb_next)))
        bad = find_unserializable(result)
        if bad:
            path, what = bad
            raise CallError(500, "not_json", "TypeError",
                            f"`{name}` returned a value that is not JSON-serializable: {path} is "
                            f"{what}; return plain int, float, str, bool, None, list or dict "
                            "(e.g. tensor.tolist(), float(x))")
        return {"result": result}


def workspace_on_path():
    """Puts the working folder (the sandbox's workspace, where helper modules are written:
    Seer's ``/root``) on ``sys.path``, after the workspace's libraries (``PYTHONPATH``), as
    it is in the kernel."""
    cwd = os.getcwd()
    if cwd in sys.path:
        return
    libs = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    after = [sys.path.index(p) + 1 for p in libs if p in sys.path]
    sys.path.insert(max(after, default=1), cwd)


def error_message(e):
    """str(e), with where Python looked and how to add a module for a missing one."""
    message = str(e)
    if not isinstance(e, ModuleNotFoundError) or not e.name:
        return message
    top = e.name.split(".")[0]
    looked = ", ".join(p or "." for p in sys.path)
    return (
        f"{message}; looked in (sys.path): {looked}. A module of your own: put `{top}.py` in "
        f"the sandbox's workspace ({os.getcwd()}), e.g. `scoped.write_file(\"{top}.py\", "
        f"code)` (Seer's `/root/{top}.py` is the same file) or `local_files`, or give the "
        f"ScopedSandbox a workspace with it as a library: `ScopedSandbox(cfg).start("
        f"Workspace(#{{ libraries: [Library::from_file(\"{top}.py\")] }}))`. A package: add "
        f"it to the sandbox config's `python_packages`"
    )


def load_interface(path, init_file=None):
    workspace_on_path()
    source = open(path, encoding="utf-8").read()
    module = types.ModuleType("interface")
    module.__file__ = os.path.abspath(path)
    module.expose = expose
    module.get_model_path = get_model_path
    module.list_configured_models = list_configured_models
    sys.modules["interface"] = module
    if init_file:
        init = open(init_file, encoding="utf-8").read()
        exec(compile(init, "<custom_init_code>", "exec"), module.__dict__)
    exec(compile(source, module.__file__, "exec"), module.__dict__)
    if not EXPOSED:
        raise ExposeError(f"{path} exposes no function; mark the functions to serve with @expose")
    return Interface(dict(EXPOSED))


# ---------------------------------------------------------------------------------------
# HTTP


def make_handler(interface, token):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "seer-rpc"
        # Headers and body go out in two writes; without this, a keep-alive client waits
        # for its delayed ACK (~40 ms) on every call.
        disable_nagle_algorithm = True

        def log_message(self, format, *args):  # noqa: A002 (the base class's name)
            pass

        def _send(self, status, payload):
            body = json.dumps(payload, allow_nan=False).encode("utf-8")
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            if status == 401:
                self.send_header("WWW-Authenticate", "Bearer")
            self.end_headers()
            self.wfile.write(body)

        def _authorized(self):
            header = self.headers.get("Authorization") or ""
            scheme, _, given = header.strip().partition(" ")
            if scheme.lower() != "bearer" or not given.strip():
                self._send(401, CallError(401, "unauthorized", "Unauthorized",
                                          "missing bearer token: send `Authorization: Bearer "
                                          "<token>`").payload())
                return False
            if not hmac.compare_digest(given.strip().encode(), token.encode()):
                self._send(403, CallError(403, "forbidden", "Forbidden",
                                          "invalid token").payload())
                return False
            return True

        def _body(self):
            n = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(n) if n else b""

        def do_GET(self):
            self._body()
            if not self._authorized():
                return
            if self.path == "/functions":
                self._send(200, {"functions": list(interface.specs.values())})
            elif self.path == "/health":
                self._send(200, {"ok": True})
            else:
                self._send(404, CallError(404, "not_found", "NotFound",
                                          f"no endpoint GET {self.path}").payload())

        def do_POST(self):
            raw = self._body()
            if not self._authorized():
                return
            if self.path != "/call":
                self._send(404, CallError(404, "not_found", "NotFound",
                                          f"no endpoint POST {self.path}").payload())
                return
            try:
                try:
                    request = json.loads(raw or b"null")
                except ValueError as e:
                    raise CallError(400, "bad_request", "BadRequest", f"the body is not JSON: {e}")
                self._send(200, interface.call(request))
            except CallError as e:
                self._send(e.status, e.payload())

    return Handler


def _write_ready(path, payload):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f)
    os.replace(tmp, path)


def main():
    ap = argparse.ArgumentParser(description="seer's ScopedSandbox RPC server")
    ap.add_argument("--interface", required=True)
    ap.add_argument("--ready-file")
    ap.add_argument("--init-file")
    ap.add_argument("--describe", action="store_true")
    opts = ap.parse_args()
    # Out of the environment before any interface code runs.
    token = os.environ.pop("SEER_RPC_TOKEN", "")
    try:
        interface = load_interface(opts.interface, opts.init_file)
    except BaseException as e:
        tb = traceback.format_exc()
        sys.stderr.write(tb)
        err = {"kind": "load", "type": type(e).__name__, "message": error_message(e),
               "traceback": tb}
        if opts.ready_file:
            _write_ready(opts.ready_file, {"error": err})
        elif opts.describe:
            print(json.dumps({"error": err}))
        sys.exit(1)
    if opts.describe:
        print(json.dumps({"functions": list(interface.specs.values())}))
        return
    if len(token) < 32:
        sys.stderr.write("SEER_RPC_TOKEN is missing or too short\n")
        sys.exit(2)
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(interface, token))
    server.daemon_threads = True
    port = server.server_address[1]
    sys.stderr.write(f"seer rpc: serving {len(interface.specs)} function(s) on 127.0.0.1:{port}\n")
    if opts.ready_file:
        _write_ready(opts.ready_file, {"port": port, "pid": os.getpid()})
    server.serve_forever()


if __name__ == "__main__":
    main()
