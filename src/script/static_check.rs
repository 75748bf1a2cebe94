//! `seer check`'s look at method and property names: where the type of a value is known
//! without running the script, a method or property seer's type does not have is
//! reported, with the closest name and the Seer spelling (`seer_names`), as the run
//! would fail there.
//!
//! Known means: a top-level variable bound once with `let` and never assigned again,
//! whose value is a call of a seer constructor or function (`Sandbox(...)`,
//! `create_notebook_session(...)`) or a method chain on one (`Sandbox(...).start()`). The
//! bodies of functions and closures are left alone.

use std::collections::{HashMap, HashSet};

use rhai::{AST, ASTNode, Engine, Expr, Position, Stmt};

use super::reference::{self, Kind};
use super::seer_names::Names;

/// One finding: where, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub line: usize,
    pub col: usize,
    pub message: String,
}

/// What the engine knows: members per seer type, the return types of functions and
/// methods, and the names any value may call (`to_json`, `type_of`, script `fn`s).
struct Api {
    names: Names,
    /// type → name → return types of its methods / getters.
    members: HashMap<String, HashMap<String, HashSet<String>>>,
    /// Function name → return types.
    functions: HashMap<String, HashSet<String>>,
    generic: HashSet<String>,
}

/// Rhai's own functions that any value can call as a method.
const BUILTIN: &[&str] = &[
    "type_of",
    "is_shared",
    "to_string",
    "to_debug",
    "clone",
    "call",
    "curry",
    "Fn",
    "print",
    "debug",
    "is_def_fn",
    "is_def_var",
    "eval",
];

impl Api {
    fn new(engine: &Engine, ast: &AST) -> Self {
        let mut members: HashMap<String, HashMap<String, HashSet<String>>> = HashMap::new();
        let mut functions: HashMap<String, HashSet<String>> = HashMap::new();
        let mut generic: HashSet<String> = BUILTIN.iter().map(|s| s.to_string()).collect();
        for f in reference::api(engine, true) {
            if f.module.is_some() {
                continue;
            }
            match (f.kind, f.this_type()) {
                (Kind::Method | Kind::Property, Some(t))
                    if t.starts_with(|c: char| c.is_ascii_uppercase()) =>
                {
                    members
                        .entry(t.to_string())
                        .or_default()
                        .entry(f.name.clone())
                        .or_default()
                        .insert(f.ret.clone());
                }
                _ => {
                    functions
                        .entry(f.name.clone())
                        .or_default()
                        .insert(f.ret.clone());
                    // A function whose first argument is not a seer type can be called on
                    // anything in method style (`x.to_json()`).
                    if f.params
                        .first()
                        .is_none_or(|(_, t)| !t.starts_with(|c: char| c.is_ascii_uppercase()))
                    {
                        generic.insert(f.name.clone());
                    }
                }
            }
        }
        generic.extend(ast.iter_functions().map(|f| f.name.to_string()));
        Self {
            names: Names::new(engine),
            members,
            functions,
            generic,
        }
    }

    /// The one return type all of `rets` agree on, if it is a seer type.
    fn seer_type(&self, rets: Option<&HashSet<String>>) -> Option<String> {
        let rets = rets?;
        let mut it = rets.iter();
        let t = it.next()?;
        (it.all(|r| r == t) && self.members.contains_key(t)).then(|| t.clone())
    }
}

struct Checker<'a> {
    api: &'a Api,
    vars: HashMap<String, String>,
    out: Vec<Finding>,
}

impl Checker<'_> {
    /// The seer type of `e`, when it is known.
    fn type_of(&self, e: &Expr) -> Option<String> {
        match e {
            Expr::Variable(v, _, _) => self.vars.get(v.1.as_str()).cloned(),
            Expr::FnCall(f, _) if f.namespace.is_empty() => self
                .api
                .seer_type(self.api.functions.get(f.name.as_str()))
                .or_else(|| {
                    // A method called as a function: `create_notebook_session(sb, ws)`.
                    let t = self.type_of(f.args.first()?)?;
                    self.api
                        .seer_type(self.api.members.get(&t)?.get(f.name.as_str()))
                }),
            Expr::Dot(b, _, _) => {
                let t = self.type_of(&b.lhs)?;
                self.member_type(&t, &b.rhs)
            }
            _ => None,
        }
    }

    /// The type of `rhs` (a method call, property or further chain) applied to a `t`.
    fn member_type(&self, t: &str, rhs: &Expr) -> Option<String> {
        let (name, rest) = match rhs {
            Expr::MethodCall(f, _) => (f.name.as_str(), None),
            Expr::Property(p, _) => (p.2.as_str(), None),
            Expr::Dot(b, _, _) => match &b.lhs {
                Expr::MethodCall(f, _) => (f.name.as_str(), Some(&b.rhs)),
                Expr::Property(p, _) => (p.2.as_str(), Some(&b.rhs)),
                _ => return None,
            },
            _ => return None,
        };
        let next = self
            .api
            .seer_type(self.api.members.get(t).and_then(|m| m.get(name)))?;
        match rest {
            Some(r) => self.member_type(&next, r),
            None => Some(next),
        }
    }

    /// Reports the first unknown member along the chain `rhs` applied to a `t`.
    fn check_chain(&mut self, t: &str, rhs: &Expr) {
        let (name, kind, pos, rest) = match rhs {
            Expr::MethodCall(f, pos) => (f.name.as_str(), Kind::Method, *pos, None),
            Expr::Property(p, pos) => (p.2.as_str(), Kind::Property, *pos, None),
            Expr::Dot(b, _, _) => match &b.lhs {
                Expr::MethodCall(f, pos) => (f.name.as_str(), Kind::Method, *pos, Some(&b.rhs)),
                Expr::Property(p, pos) => (p.2.as_str(), Kind::Property, *pos, Some(&b.rhs)),
                _ => return,
            },
            _ => return,
        };
        let known = self
            .api
            .members
            .get(t)
            .is_some_and(|m| m.contains_key(name))
            || (kind == Kind::Method && self.api.generic.contains(name));
        if !known {
            self.report(pos, self.api.names.unknown_member(t, name, kind));
            return;
        }
        if let Some(r) = rest
            && let Some(next) = self
                .api
                .seer_type(self.api.members.get(t).and_then(|m| m.get(name)))
        {
            self.check_chain(&next, r);
        }
    }

    fn report(&mut self, pos: Position, message: String) {
        let f = Finding {
            line: pos.line().unwrap_or(0),
            col: pos.position().unwrap_or(0),
            message,
        };
        if !self.out.contains(&f) {
            self.out.push(f);
        }
    }
}

/// Variables bound once with `let` outside functions and never assigned anywhere (closures
/// can assign the variables they capture): the only ones whose type is taken as known.
fn single_bindings(ast: &AST) -> HashSet<String> {
    let mut lets: HashMap<String, usize> = HashMap::new();
    let mut assigned: HashSet<String> = HashSet::new();
    ast.clone_statements_only().walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Stmt(Stmt::Var(v, _, _))) => {
                *lets.entry(v.0.name.to_string()).or_default() += 1;
            }
            // A `for` variable of the same name: not one binding.
            Some(ASTNode::Stmt(Stmt::For(f, _))) => {
                *lets.entry(f.0.name.to_string()).or_default() += 2;
            }
            _ => {}
        }
        true
    });
    ast.walk(&mut |path: &[ASTNode]| {
        if let Some(ASTNode::Stmt(Stmt::Assignment(a))) = path.last()
            && let Expr::Variable(v, _, _) = &a.1.lhs
        {
            assigned.insert(v.1.to_string());
        }
        true
    });
    lets.into_iter()
        .filter(|(n, c)| *c == 1 && !assigned.contains(n))
        .map(|(n, _)| n)
        .collect()
}

/// The unknown methods and properties of values whose seer type is known.
pub fn check(engine: &Engine, ast: &AST) -> Vec<Finding> {
    let api = Api::new(engine, ast);
    let singles = single_bindings(ast);
    let main = ast.clone_statements_only();
    let mut c = Checker {
        api: &api,
        vars: HashMap::new(),
        out: vec![],
    };
    main.walk(&mut |path: &[ASTNode]| {
        match path.last() {
            Some(ASTNode::Stmt(Stmt::Var(v, _, _))) => {
                let name = v.0.name.to_string();
                if singles.contains(&name)
                    && let Some(t) = c.type_of(&v.1)
                {
                    c.vars.insert(name, t);
                }
            }
            Some(ASTNode::Expr(Expr::Dot(b, _, _))) => {
                if let Some(t) = c.type_of(&b.lhs) {
                    c.check_chain(&t, &b.rhs);
                }
            }
            _ => {}
        }
        true
    });
    c.out.sort_by_key(|f| (f.line, f.col));
    c.out
}
