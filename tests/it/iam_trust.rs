//! Who may assume which of drctl's AWS roles: `terraform/iam.tf`'s trust
//! policies, evaluated as Terraform renders them and as STS judges them.
//!
//! The failover role (`drctl`) promotes, switches and scales; the observer
//! role (`drctl-observer`) reads. Watch's quorum and veto hold only if no
//! observer host can become the failover role: so each role's trust is
//! read from the role's own `assume_role_policy` (not from a document name
//! chosen here), its `dynamic` statements expanded with the variables, and
//! every principal that could ask (the failover principal, each observer
//! host, a session of either role, the watch pods' web identity, another
//! pod of the same cluster) is put to both. Only what the policies use is
//! modelled: `Allow`/`Deny`, `AWS` and `Federated` principals (an account's
//! `:root` as any principal of that account), and the `StringEquals` and
//! `ArnLike` conditions; anything else fails the test, so a new kind of
//! statement is evaluated before it is trusted.

use std::collections::BTreeMap;

use hcl::eval::{Context, Evaluate, FuncArgs, FuncDef, ParamType};
use hcl::{Body, Value};

use crate::iam::glob;
use crate::terraform::{attr, blocks_of, label, parse_terraform};

const ACCOUNT: &str = "111122223333";
const ISSUER: &str = "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE";

/// Who asks STS for a role.
#[derive(Debug, Clone)]
enum Caller {
    /// An IAM principal (a user, a role's session: `aws:PrincipalArn` is
    /// the role's ARN) calling `AssumeRole`.
    Aws(String),
    /// A web identity token of `provider` with these claims, calling
    /// `AssumeRoleWithWebIdentity`.
    Web {
        provider: String,
        claims: BTreeMap<String, String>,
    },
}

/// One statement of a trust policy, evaluated.
#[derive(Debug)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    principals: Vec<(String, String)>,
    conditions: Vec<(String, String, Vec<String>)>,
}

fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(items) => items.iter().flat_map(strings).collect(),
        other => panic!("a string or a list of strings, not {other:?}"),
    }
}

fn eval(body: &Body, key: &str, ctx: &Context) -> Option<Value> {
    attr(body, key).map(|e| {
        e.evaluate(ctx)
            .unwrap_or_else(|err| panic!("`{key} = {e}` does not evaluate: {err}"))
    })
}

fn statement(body: &Body, ctx: &Context) -> Statement {
    let effect = eval(body, "effect", ctx).map(|v| strings(&v).concat());
    let blocks = |name: &'static str| body.blocks().filter(move |b| b.identifier() == name);
    let principals = blocks("principals")
        .flat_map(|p| {
            let ty = strings(&eval(p.body(), "type", ctx).expect("a principal's type")).concat();
            let ids = strings(&eval(p.body(), "identifiers", ctx).expect("identifiers"));
            ids.into_iter().map(move |id| (ty.clone(), id))
        })
        .collect();
    let conditions = blocks("condition")
        .map(|c| {
            let one = |k| strings(&eval(c.body(), k, ctx).expect(k)).concat();
            let values = strings(&eval(c.body(), "values", ctx).expect("values"));
            (one("test"), one("variable"), values)
        })
        .collect();
    Statement {
        allow: effect.as_deref().unwrap_or("Allow") == "Allow",
        actions: strings(&eval(body, "actions", ctx).expect("actions")),
        principals,
        conditions,
    }
}

fn func(f: fn(FuncArgs) -> Result<Value, String>, params: usize) -> FuncDef {
    let mut b = FuncDef::builder();
    for _ in 0..params {
        b = b.param(ParamType::Any);
    }
    b.build(f)
}

/// The functions iam.tf's trust policies and locals call.
fn context(vars: Value) -> Context<'static> {
    let mut ctx = Context::new();
    ctx.declare_var("var", vars);
    ctx.declare_func(
        "length",
        func(
            |a| match &a[0] {
                Value::Array(v) => Ok(Value::from(v.len() as u64)),
                other => Err(format!("length of {other:?}")),
            },
            1,
        ),
    );
    ctx.declare_func(
        "concat",
        func(
            |a| {
                let mut out = Vec::new();
                for v in a.iter() {
                    match v {
                        Value::Array(items) => out.extend(items.iter().cloned()),
                        other => return Err(format!("concat of {other:?}")),
                    }
                }
                Ok(Value::Array(out))
            },
            2,
        ),
    );
    ctx
}

/// `local.*` as iam.tf computes it, in account [`ACCOUNT`] of partition
/// `aws`: the locals that evaluate with those two (the role ARNs) and no
/// data source.
fn locals(files: &[Body], vars: &Value) -> Value {
    let mut known: hcl::Map<String, Value> = hcl::Map::new();
    known.insert("partition".into(), "aws".into());
    known.insert("account_id".into(), ACCOUNT.into());
    let mut ctx = context(vars.clone());
    ctx.declare_var("local", Value::Object(known.clone()));
    for block in files.iter().flat_map(Body::blocks) {
        if block.identifier() != "locals" {
            continue;
        }
        for a in block.body().attributes() {
            if known.contains_key(a.key()) {
                continue;
            }
            if let Ok(v) = a.expr().evaluate(&ctx) {
                known.insert(a.key().to_string(), v);
            }
        }
    }
    Value::Object(known)
}

/// The trust of role `role` (`resource "aws_iam_role" <role>`): the
/// statements of the policy document its `assume_role_policy` names.
fn trust_of(files: &[Body], role: &str, vars: &Value) -> Vec<Statement> {
    let block = blocks_of(files, "resource", "aws_iam_role")
        .into_iter()
        .find(|b| label(b) == role)
        .unwrap_or_else(|| panic!("resource \"aws_iam_role\" \"{role}\" in terraform/"));
    let reference = attr(block.body(), "assume_role_policy")
        .expect("an assume_role_policy")
        .to_string();
    let document = reference
        .trim()
        .strip_prefix("data.aws_iam_policy_document.")
        .and_then(|r| r.strip_suffix(".json"))
        .unwrap_or_else(|| panic!("{role}'s trust is a policy document: {reference}"));
    let doc = blocks_of(files, "data", "aws_iam_policy_document")
        .into_iter()
        .find(|d| label(d) == document)
        .unwrap_or_else(|| panic!("data \"aws_iam_policy_document\" \"{document}\""));
    let mut ctx = context(vars.clone());
    ctx.declare_var("local", locals(files, vars));
    let mut out = Vec::new();
    for b in doc.body().blocks() {
        match (b.identifier(), b.labels().first().map(|l| l.as_str())) {
            ("statement", _) => out.push(statement(b.body(), &ctx)),
            ("dynamic", Some("statement")) => {
                let items = eval(b.body(), "for_each", &ctx).expect("a for_each");
                let Value::Array(items) = items else {
                    panic!("{document}'s dynamic statement iterates a list: {items:?}");
                };
                let content = crate::terraform::child(b.body(), "content").expect("content");
                for item in items {
                    let mut each = context(vars.clone());
                    each.declare_var("local", locals(files, vars));
                    each.declare_var("statement", hcl::value!({ value = (item) }));
                    out.push(statement(content, &each));
                }
            }
            (other, _) => panic!("{document}: a `{other}` block is not modelled"),
        }
    }
    assert!(!out.is_empty(), "{document} has no statement");
    out
}

/// The account of an ARN (`arn:aws:iam::<account>:...`).
fn account_of(arn: &str) -> Option<&str> {
    arn.split(':').nth(4)
}

fn principal_matches(principals: &[(String, String)], caller: &Caller) -> bool {
    principals
        .iter()
        .any(|(ty, id)| match (ty.as_str(), caller) {
            ("AWS", Caller::Aws(arn)) => {
                id == "*"
                    || id == arn
                    || (id.ends_with(":root") && account_of(id) == account_of(arn))
            }
            ("Federated", Caller::Web { provider, .. }) => id == provider,
            ("AWS" | "Federated", _) => false,
            (other, _) => panic!("a `{other}` principal is not modelled"),
        })
}

fn condition_holds(
    (test, variable, values): &(String, String, Vec<String>),
    caller: &Caller,
) -> bool {
    let value = match (variable.as_str(), caller) {
        ("aws:PrincipalArn", Caller::Aws(arn)) => Some(arn.as_str()),
        (_, Caller::Web { claims, .. }) => claims.get(variable).map(String::as_str),
        _ => None,
    };
    // A key the request does not carry satisfies no condition on it.
    let Some(value) = value else { return false };
    match test.as_str() {
        "StringEquals" => values.iter().any(|v| v == value),
        "ArnLike" | "StringLike" => values.iter().any(|v| glob(v, value, false)),
        other => panic!("a `{other}` condition is not modelled"),
    }
}

fn matches(s: &Statement, caller: &Caller) -> bool {
    let action = match caller {
        Caller::Aws(_) => "sts:AssumeRole",
        Caller::Web { .. } => "sts:AssumeRoleWithWebIdentity",
    };
    s.actions.iter().any(|a| glob(a, action, true))
        && principal_matches(&s.principals, caller)
        && s.conditions.iter().all(|c| condition_holds(c, caller))
}

/// Whether STS lets `caller` assume a role of this trust: an `Allow`
/// matches and no `Deny` does.
fn can_assume(trust: &[Statement], caller: &Caller) -> bool {
    trust.iter().any(|s| s.allow && matches(s, caller))
        && !trust.iter().any(|s| !s.allow && matches(s, caller))
}

fn web(namespace: &str, account: &str) -> Caller {
    let provider = format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}");
    let claims = BTreeMap::from([
        (
            format!("{ISSUER}:sub"),
            format!("system:serviceaccount:{namespace}:{account}"),
        ),
        (format!("{ISSUER}:aud"), "sts.amazonaws.com".to_string()),
    ]);
    Caller::Web { provider, claims }
}

/// Issue 74, attack 1: the observer role used the failover role's trust,
/// so any observer host (and, through IRSA, whatever the annotation was
/// given) could assume the failover role and promote, switch and scale
/// with no quorum and no veto. Evaluated for a failover principal that is
/// one role and for one that is the whole account (every principal the
/// account allows): no principal may assume both roles; each observer
/// reaches the observer role alone, and only the watch service account's
/// tokens do.
#[test]
fn regression_an_observer_could_assume_the_failover_role() {
    let files = parse_terraform();
    let failover_role = format!("arn:aws:iam::{ACCOUNT}:role/drctl");
    let observer_role = format!("arn:aws:iam::{ACCOUNT}:role/drctl-observer");
    let oncall = format!("arn:aws:iam::{ACCOUNT}:role/sre-oncall");
    let bastion = format!("arn:aws:iam::{ACCOUNT}:role/watch-bastion");
    for trusted in [oncall.clone(), format!("arn:aws:iam::{ACCOUNT}:root")] {
        let vars = hcl::value!({
            drctl_trusted_principal_arn = (trusted.clone())
            drctl_observer_principal_arns = [(bastion.clone())]
            drctl_watch_oidc = {
                provider_arn = (format!("arn:aws:iam::{ACCOUNT}:oidc-provider/{ISSUER}"))
                issuer = (ISSUER)
                namespace = "drctl"
                service_account = "drctl-watch"
            }
        });
        let failover = trust_of(&files, "drctl", &vars);
        let observer = trust_of(&files, "drctl_observer", &vars);
        let callers = [
            ("the on-call role", Caller::Aws(oncall.clone()), true, false),
            (
                "an observer host",
                Caller::Aws(bastion.clone()),
                false,
                true,
            ),
            (
                "a session of the observer role",
                Caller::Aws(observer_role.clone()),
                false,
                false,
            ),
            (
                "a session of the failover role",
                Caller::Aws(failover_role.clone()),
                trusted.ends_with(":root"),
                false,
            ),
            ("a watch pod", web("drctl", "drctl-watch"), false, true),
            (
                "another pod of the cluster",
                web("drctl", "default"),
                false,
                false,
            ),
            (
                "a pod of another namespace",
                web("apps", "drctl-watch"),
                false,
                false,
            ),
        ];
        for (who, caller, to_failover, to_observer) in callers {
            let (f, o) = (
                can_assume(&failover, &caller),
                can_assume(&observer, &caller),
            );
            assert!(
                !(f && o),
                "{who} can assume both roles (trusted: {trusted}): {caller:?}"
            );
            assert_eq!(
                f, to_failover,
                "{who} assuming the failover role (trusted: {trusted})"
            );
            assert_eq!(
                o, to_observer,
                "{who} assuming the observer role (trusted: {trusted})"
            );
        }
    }
}

/// With no observer principal and no cluster given, nobody can assume the
/// observer role (its trust allows nothing), and the failover principal
/// still assumes the failover role.
#[test]
fn without_observers_given_the_observer_role_trusts_nobody() {
    let files = parse_terraform();
    let oncall = format!("arn:aws:iam::{ACCOUNT}:role/sre-oncall");
    let vars = hcl::value!({
        drctl_trusted_principal_arn = (oncall.clone())
        drctl_observer_principal_arns = []
        drctl_watch_oidc = null
    });
    let observer = trust_of(&files, "drctl_observer", &vars);
    assert!(observer.iter().all(|s| !s.allow), "{observer:?}");
    for caller in [Caller::Aws(oncall.clone()), web("drctl", "drctl-watch")] {
        assert!(!can_assume(&observer, &caller), "{caller:?}");
    }
    assert!(can_assume(
        &trust_of(&files, "drctl", &vars),
        &Caller::Aws(oncall)
    ));
}
