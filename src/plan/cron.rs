//! Cron expressions as plans write them (`[drill] schedule`, blackout
//! `start`): exactly 5 fields, in UTC.
//!
//! A module of its own, beside [`super::duration`], because both the model
//! ([`super::spec`], which finds blackout windows) and the checks
//! ([`super::validate`]) read them: neither has to import the other for it.

/// Parses a 5-field cron expression (UTC), as drill schedules use.
pub fn parse_cron(expr: &str) -> Result<croner::Cron, String> {
    if expr.split_whitespace().count() != 5 {
        return Err(format!(
            "expected 5 fields, found {}",
            expr.split_whitespace().count()
        ));
    }
    croner::parser::CronParser::builder()
        .build()
        .parse(expr)
        .map_err(|e| e.to_string())
}
