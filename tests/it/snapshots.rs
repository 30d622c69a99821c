//! Snapshots of everything the shipped playbook renders, for each host of the example
//! inventory, and of the masked diffs against a stock conf tree: the output is the product.

use std::path::Path;

use switchyard::engine::facts::FileFact;
use switchyard::inputs::inventory::Inventory;
use switchyard::inputs::playbook::{Disruption, Playbook};

use crate::harness::repo;

fn stock_fact(rel: &str) -> FileFact {
    match switchyard::demo::STOCK_CONF.iter().find(|(r, _)| *r == rel) {
        Some((_, text)) => FileFact::Present {
            owner: "root".into(),
            group: "freeswitch".into(),
            mode: 0o644,
            content: text.as_bytes().to_vec(),
        },
        None => FileFact::Missing,
    }
}

#[test]
fn shipped_wavix_playbook_renders() {
    // The example fleet's trunk password is vault-encrypted (group_vars/pbx.age).
    let key = repo("inventory/example-vault-identity.txt");
    let vault =
        switchyard::inputs::vault::Vault::from_sources(None, Some(Path::new(&key))).unwrap();
    let inv = Inventory::load_with(Path::new(&repo("inventory/pbx.yml")), &vault).unwrap();
    let pb = Playbook::load(Path::new(&repo("playbooks/wavix.yml"))).unwrap();
    let play = &pb.plays[0];
    let states = switchyard::engine::run::desired_states(&inv, &pb, play, None);
    assert_eq!(states.len(), 3);
    let mut seen = 0;
    for (host, desired) in states {
        let desired = desired.unwrap();
        let facts: Vec<FileFact> = desired.files.iter().map(|f| stock_fact(&f.rel)).collect();
        let plan =
            switchyard::engine::plan::plan(&desired, &facts, Disruption::None, None).unwrap();
        for f in &plan.files {
            let text = String::from_utf8(f.new.clone()).unwrap();
            insta::assert_snapshot!(format!("{}__{}", host.name, f.rel.replace('/', "__")), text);
            if !f.diff.is_empty() {
                insta::assert_snapshot!(
                    format!("{}__{}__diff", host.name, f.rel.replace('/', "__")),
                    f.diff.replace(&*desired.conf_root, "CONF")
                );
            }
            seen += 1;
        }
        let steps: Vec<String> = plan
            .reload
            .steps
            .iter()
            .chain(&plan.reload.pending)
            .map(|s| format!("{} ({:?}): {}", s.action, s.disruption, s.reason))
            .collect();
        insta::assert_snapshot!(format!("{}__reload_plan", host.name), steps.join("\n"));
    }
    assert!(seen >= 15, "{seen} files rendered");
}
