use super::*;

#[test]
fn a_run_id_is_a_label_value() {
    assert_eq!(
        label_value("20261130T050000Z-archive-gcp-d4"),
        "20261130t050000z-archive-gcp-d4"
    );
    assert_eq!(label_value("a:b/C"), "a_b_c");
}
