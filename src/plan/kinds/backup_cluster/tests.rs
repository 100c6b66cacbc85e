use super::*;

#[test]
fn a_writers_name_is_the_clusters_and_the_runs_within_rds_limits() {
    let run = "20261130T040000Z-archive-c3";
    assert_eq!(
        writer_id("archive-ledger", run),
        "archive-ledger-writer-r3cevih"
    );
    // Another run's writer (a failback's) never takes the name of one
    // that stayed with a cluster renamed out of the way.
    assert_ne!(
        writer_id("archive-ledger", run),
        writer_id("archive-ledger", "20261201T040000Z-archive-d4")
    );
    // 63 characters at most, and no hyphen doubled where the name is cut.
    for long in [
        format!("{}-b{}", "a".repeat(45), "c".repeat(6)),
        "x".repeat(63),
    ] {
        let w = writer_id(&long, run);
        assert!(w.len() <= 63 && rds_name(&w) && !w.contains("--"), "{w}");
    }
}

#[test]
fn a_plan_names_a_class_and_places_a_restore_only_where_it_has_a_cluster() {
    let text = r#"
[plan]
name = "ledger"
tier = "standard"
regions = ["us-west-2", "us-east-1"]

[[backup_cluster]]
id = "ledger"
regions = { us-west-2 = "ledger", us-east-1 = "ledger-" }
subnet_groups = { eu-west-1 = "ledger-private" }
cluster_parameter_groups = { us-east-1 = "tuned/16" }
instance_class = "r6g.large"
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = crate::plan::load(&[path]);
    let said: Vec<String> = (loaded.diagnostics.iter())
        .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(
        said,
        [
            "9:47 backup_cluster `ledger` names `ledger-` in us-east-1, not an Aurora DB cluster identifier",
            "10:19 backup_cluster `ledger` places a restore in eu-west-1, where it has no cluster",
            "11:42 `tuned/16` does not name a DB cluster parameter group",
            "12:18 `r6g.large` is not an RDS instance class",
        ],
        "{said:#?}"
    );
}

#[test]
fn a_plan_without_a_writer_class_is_refused_with_its_position() {
    let text = r#"
[plan]
name = "ledger"
tier = "standard"
regions = ["us-west-2", "us-east-1"]

[[backup_cluster]]
id = "ledger"
regions = { us-west-2 = "ledger", us-east-1 = "ledger" }
"#;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.toml");
    std::fs::write(&path, text).unwrap();
    let loaded = crate::plan::load(&[path]);
    let said: Vec<String> = (loaded.diagnostics.iter())
        .map(|d| format!("{}:{} {}", d.line, d.column, d.message))
        .collect();
    assert_eq!(said.len(), 1, "{said:#?}");
    assert!(said[0].contains("instance_class"), "{said:#?}");
}
