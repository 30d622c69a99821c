//! Secrets in the channels that carry text switchyard did not write itself: FreeSWITCH's
//! answers, lint findings quoting configuration.

use crate::harness::*;
use crate::session::exit;

/// An `fs_cli` answer that quotes the secret (here the stand-in echoing an unknown command
/// built from it) is masked in the terminal, `--json` and the history alike.
#[test]
fn freeswitch_answers_are_masked_everywhere() {
    let fleet = Fleet::new("answers", 1);
    let pb = playbook(
        &fleet.dir,
        "echo.yml",
        "- hosts: pbx\n  tasks:\n    - name: gw\n      vars: {gateway_name: wavix, gateway_register: true, gateway_realm: sip.test, gateway_proxy: sip.test, wavix_expire_seconds: 600, wavix_ping_seconds: 0, wavix_inbound_context: in, caller_id_passthrough: false}\n      template: {src: gateway.xml.j2, dest: sip_profiles/external/wavix.xml}\n    - fs_cli: {command: \"{{ wavix_password }}-probe status\", on_change: [gw]}\n",
    );
    let hist = fleet.dir.join("h.db");
    let out = fleet
        .session_with(&|_, _| "wavix_password: Hunter2-s3cret\n".into())
        .playbook(pb)
        .env("SWITCHYARD_HISTORY", &hist)
        .run(["apply", "--json"])
        .expect(exit::FAILED);
    // The answer really was about the command (not some other failure).
    assert!(out.stdout.contains("Command not found"), "{}", out.stdout);
    // The database and its write-ahead log, as bytes: a secret would be there in clear.
    let history = history_bytes(&hist);
    assert!(
        history.contains("Command not found"),
        "the run was recorded"
    );
    for (what, text) in [("output", out.all()), ("history", history)] {
        assert!(
            !text.contains("Hunter2-s3cret"),
            "{what} carries the secret:\n{text}"
        );
    }
}

/// `lint --conf` on a tree whose misspelt pre-process line sets a password: the finding
/// and its fix never quote the password, in text or JSON.
#[test]
fn lint_findings_never_quote_a_password() {
    let dir = std::env::temp_dir().join(format!("switchyard-it-lintsecret-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("vars.xml"),
        "<include>\n  <XPREPROCESS cmd=\"set\" data=\"default_password=Hunter2\"/>\n  <X-PRE-PROCESS cmd='set' data='trunk_password=Hunter3'/>\n</include>\n",
    )
    .unwrap();
    for extra in [&[][..], &["--json"][..]] {
        let mut args = vec!["lint", "--conf", dir.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = switchyard(&args);
        assert!(out.all().contains("vars.xml"), "{}", out.all());
        assert!(
            !out.all().contains("Hunter2") && !out.all().contains("Hunter3"),
            "{}",
            out.all()
        );
    }
}

fn sha256(data: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Plans, `--json` and the history show masked diffs; with a plain sha256 next to them a
/// dictionary password or a 4-digit PIN would fall to an offline brute force. Secret-bearing
/// files get keyed digests: the brute force over a small dictionary and every 4-digit PIN
/// finds nothing, and the real content's sha256 appears nowhere.
/// The brute force an attacker would run on plan.json: every created secret-bearing file's
/// masked diff, filled with a small dictionary and every 4-digit PIN, against its published
/// sha256. Returns how many guesses were tried.
fn brute_force(plan_json: &serde_json::Value) -> usize {
    let words = [
        "123456",
        "password",
        "password1",
        "letmein",
        "qwerty",
        "secret1",
    ];
    let mut candidates: Vec<String> = words.iter().map(|w| w.to_string()).collect();
    candidates.extend((0..10_000).map(|n| format!("{n:04}")));
    let mut tried = 0usize;
    for h in plan_json["plays"][0]["hosts"].as_array().unwrap() {
        for f in h["files"].as_array().unwrap() {
            let diff = f["diff"].as_str().unwrap_or("");
            if !diff.contains("********") || f["status"] != "created" {
                continue;
            }
            let target = f["new_sha256"].as_str().unwrap().to_string();
            let masked: String = diff
                .lines()
                .filter(|l| l.starts_with('+') && !l.starts_with("+++"))
                .map(|l| format!("{}\n", &l[1..]))
                .collect();
            let slots = masked.matches("********").count();
            assert!((1..=2).contains(&slots), "{masked}");
            // One slot: every candidate; two (password and PIN): dictionary x PINs.
            let pairs: Vec<(String, String)> = if slots == 1 {
                candidates
                    .iter()
                    .map(|c| (c.clone(), String::new()))
                    .collect()
            } else {
                words
                    .iter()
                    .flat_map(|w| (0..10_000).map(move |n| (w.to_string(), format!("{n:04}"))))
                    .collect()
            };
            for (a, b) in pairs {
                let guess = masked
                    .replacen("********", &a, 1)
                    .replacen("********", &b, 1);
                tried += 1;
                assert_ne!(
                    sha256(guess.as_bytes()),
                    target,
                    "{} fell to a brute force",
                    f["rel"]
                );
            }
        }
    }
    tried
}

/// Plans, `--json` and the history show masked diffs; with a plain sha256 next to them a
/// dictionary password or a 4-digit PIN would fall to an offline brute force. Secret-bearing
/// files get keyed digests: the brute force over a small dictionary and every 4-digit PIN
/// finds nothing, and the real content's sha256 appears nowhere.
#[test]
fn plans_and_reports_cannot_be_brute_forced() {
    let fleet = Fleet::new("bruteforce", 1);
    let hist = fleet.dir.join("h.db");
    let session = fleet
        .session_with(&|_, _| {
            "wavix_password: letmein\nuser: {id: \"1000\", password: password1, vm_password: \"4711\", caller_id_name: Main, caller_id_number: \"16468097065\"}\n".into()
        })
        .env("SWITCHYARD_HISTORY", &hist);
    fleet.hosts[0].set_provider_password("sip.test", "trunk1", "letmein");
    // Both secret-bearing files are created, so their whole content is in the diff.
    std::fs::remove_file(fleet.hosts[0].conf("directory/default/1000.xml")).unwrap();
    let plan = fleet.dir.join("plan.json");
    let plan_s = plan.to_str().unwrap();
    session.run(["plan", "-o", plan_s]).expect(exit::OK);
    let check = session.run(["apply", "--check", "--json"]);
    let applied = session.run(["apply", "--json"]).expect(exit::OK);
    let published = [
        std::fs::read_to_string(&plan).unwrap(),
        check.stdout.clone(),
        applied.stdout.clone(),
        switchyard(&["history", "--json", "--history", hist.to_str().unwrap()]).stdout,
    ]
    .join("\n");

    // The real content of every secret-bearing file: its sha256 is nowhere.
    for rel in [
        "sip_profiles/external/wavix.xml",
        "directory/default/1000.xml",
    ] {
        let real = sha256(fleet.hosts[0].read(rel).as_bytes());
        assert!(!published.contains(&real), "{rel}: plain sha256 published");
    }

    let plan_json = serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let tried = brute_force(&plan_json);
    assert!(tried > 60_000, "brute force tried only {tried} guesses");
}

const PASS: &str = "vault pass for the secrets tests";

fn inventory_dir(tag: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("switchyard-it-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("group_vars")).unwrap();
    std::fs::write(
        dir.join("inv.yml"),
        "all:\n  children:\n    pbx:\n      hosts:\n        pbx1: {ansible_connection: local}\n",
    )
    .unwrap();
    dir
}

/// `inventory` masks every secret before serializing: one from the environment in the
/// fs_cli line, one holding a `"` under a name that does not say secret.
#[test]
fn inventory_output_masks_before_serializing() {
    let dir = inventory_dir("inv-mask");
    std::fs::write(
        dir.join("group_vars/pbx.yml"),
        "fs_cli: {env: SY_FSCLI}\nnote: {env: SY_NOTE}\n",
    )
    .unwrap();
    let env = [
        ("SY_FSCLI", "fs_cli -p Esl-S3cret-pw"),
        ("SY_NOTE", "quo\"ted-s3cret"),
    ];
    for extra in [&[][..], &["--json"][..]] {
        let inv = dir.join("inv.yml");
        let mut args = vec!["inventory", "-i", inv.to_str().unwrap()];
        args.extend_from_slice(extra);
        let out = switchyard_env(&args, &env);
        assert_eq!(out.code, 0, "{}", out.all());
        let all = out.all();
        assert!(
            !all.contains("Esl-S3cret") && !all.contains("ted-s3cret"),
            "{all}"
        );
        assert!(all.contains("********"), "{all}");
        if extra.is_empty() {
            assert!(all.contains("connection: local"), "{all}");
        }
    }
}

/// A vault-encrypted vars file whose content is not a map: the error names the file and
/// the position, never the decrypted text. And `vault encrypt group_vars/all.yml` writes
/// the name the loader reads.
#[test]
fn vault_files_never_quote_secrets_and_are_named_as_loaded() {
    let dir = inventory_dir("vault-files");
    let inv = dir.join("inv.yml");
    let plain = dir.join("group_vars/pbx.yml");
    std::fs::write(&plain, "- just-a-list-Hunter2\n").unwrap();
    let env = [("SWITCHYARD_VAULT_PASSWORD", PASS)];
    let enc = switchyard_env(&["vault", "encrypt", plain.to_str().unwrap()], &env);
    assert_eq!(enc.code, 0, "{}", enc.all());
    assert!(dir.join("group_vars/pbx.age").exists(), "{}", enc.all());
    std::fs::remove_file(&plain).unwrap();
    let out = switchyard_env(&["inventory", "-i", inv.to_str().unwrap()], &env);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.all().contains("pbx.age"), "{}", out.all());
    assert!(!out.all().contains("Hunter2"), "{}", out.all());

    // A proper vars file, encrypted under the default name, is loaded (and masked).
    std::fs::remove_file(dir.join("group_vars/pbx.age")).unwrap();
    let all = dir.join("group_vars/all.yml");
    std::fs::write(&all, "trunk_pw: Hunter3-value\n").unwrap();
    let enc = switchyard_env(&["vault", "encrypt", all.to_str().unwrap()], &env);
    assert_eq!(enc.code, 0, "{}", enc.all());
    std::fs::remove_file(&all).unwrap();
    let out = switchyard_env(&["inventory", "-i", inv.to_str().unwrap(), "--json"], &env);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        out.json()["hosts"][0]["vars"]["trunk_pw"],
        "********",
        "{}",
        out.stdout
    );

    // An encrypted file named for no group is never read: said, not silently lost.
    std::fs::copy(
        dir.join("group_vars/all.age"),
        dir.join("group_vars/pbxes.age"),
    )
    .unwrap();
    let out = switchyard_env(&["inventory", "-i", inv.to_str().unwrap()], &env);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("pbxes.age: no group is named `pbxes`, so this encrypted file is never read"),
        "{}",
        out.stderr
    );
}
