//! `switchyard import --as-is` against real sshd hosts: the conf trees are read without a
//! byte changing on the PBXes, the project written holds no secret in plain text, and
//! `apply --check` right after the import changes nothing on any host.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use crate::harness::*;

const VAULT: (&str, &str) = ("SWITCHYARD_VAULT_PASSWORD", "import test vault passphrase");

/// Everything about a tree a write would change: every entry (never following links) with
/// its type, mode, owner, size, modification time and content.
pub(crate) fn snapshot(root: &Path) -> BTreeMap<String, String> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let content = if m.file_type().is_file() {
                format!("{:?}", std::fs::read(&p).unwrap())
            } else if m.file_type().is_symlink() {
                std::fs::read_link(&p).unwrap().display().to_string()
            } else {
                String::new()
            };
            out.insert(
                rel,
                format!(
                    "{:?} {:o} {}:{} {} {}.{} {content}",
                    m.file_type(),
                    m.mode(),
                    m.uid(),
                    m.gid(),
                    m.size(),
                    m.mtime(),
                    m.mtime_nsec()
                ),
            );
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// Every file under `dir`, as (path, bytes).
fn files_under(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push((p.display().to_string(), std::fs::read(&p).unwrap()));
        }
    }
    out
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// Conf files as an operator keeps them: not readable by every user.
fn tighten(h: &TestHost) {
    run(Command::new("chmod").args(["-R", "o-rwx"]).arg(h.conf("")));
}

fn import(fleet: &Fleet, inv: &Path, dir: &Path, extra: &[&str]) -> Out {
    let mut args = vec![
        "import",
        "-i",
        inv.to_str().unwrap(),
        "--as-is",
        "--write",
        dir.to_str().unwrap(),
        "--known-hosts",
        fleet.known_hosts.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    switchyard_env(&args, &[VAULT])
}

fn check(fleet: &Fleet, dir: &Path) -> Out {
    switchyard_env(
        &[
            "apply",
            "--check",
            "-i",
            dir.join("inventory").to_str().unwrap(),
            dir.join("playbook.yml").to_str().unwrap(),
            "--known-hosts",
            fleet.known_hosts.to_str().unwrap(),
        ],
        &[VAULT],
    )
}

/// Three PBXes whose trees differ (secrets, a gateway only one has, an edited dialplan,
/// FreeSWITCH's whole vanilla tree on the third),
/// with a link out of the conf root, a FIFO, a non-UTF-8 file, a file over the size limit
/// and a world-readable file holding a secret planted among them. The import lists each of
/// those per host with its reason and reads none of them; nothing on either PBX changes (no
/// lock file, no private folder appears); no secret reaches the project in plain text; and
/// `apply --check` of the project reports no change on either host.
#[test]
fn as_is_import_adopts_differing_pbxes_and_check_changes_nothing() {
    let fleet = Fleet::new("import", 3);
    plant_differing_trees(&fleet);
    let (a, b, v) = (fleet.host("pbx1"), fleet.host("pbx2"), fleet.host("pbx3"));
    let inv = fleet.inventory("inv.yml", &|i, _| {
        if i == 1 {
            "freeswitch_max_file_bytes: 100000".into()
        } else {
            String::new()
        }
    });
    let trees = || [a, b, v].map(|h| snapshot(&h.conf("")));
    let before = trees();

    let dir = tmp("import-project").join("adopted");
    let out = import(&fleet, &inv, &dir, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(trees() == before, "the import changed a PBX");
    assert!([a, b, v].iter().all(|h| !h.exists(".switchyard")));
    assert_unadoptable_listed(&out);
    assert_no_plain_secret(&dir, &out);
    assert_templates_grouped(&dir);
    // The project changes nothing: apply --check reports every host unchanged.
    let c = check(&fleet, &dir);
    assert_eq!(c.code, 0, "{}", c.all());
    assert!(
        c.all().contains("hosts: 0 changed, 3 ok, 0 failed"),
        "{}",
        c.all()
    );

    assert_no_second_import_and_limit(&fleet, &inv, &dir);
}

/// The secrets planted on the three PBXes (and the vanilla tree's own), never in the
/// project or the output in plain text.
const SECRETS: [&str; 12] = [
    "Esl-Pbx1-Secret",
    "Default-Pbx1-Secret",
    "Default-Pbx2-Secret",
    "Carrier&amp;Trunk-Pw",
    "Carrier&Trunk-Pw",
    "World-Readable-Pw",
    "Esl-Pbx2-Secret",
    "Hash-Remote-Secret",
    "Erlang-Cookie-Secret",
    "Fr33Sw1tch",
    "MyPrivateKeyPassword",
    "c6440e5de50b403206989679159de89a",
];

/// pbx1 and pbx2 from the stock tree with their own secrets and IPs, pbx2 with a carrier, an
/// edited dialplan and planted things, pbx3 FreeSWITCH's whole vanilla tree.
fn plant_differing_trees(fleet: &Fleet) {
    let (a, b, v) = (fleet.host("pbx1"), fleet.host("pbx2"), fleet.host("pbx3"));
    // pbx3: FreeSWITCH 1.10.12's whole vanilla tree (199 files), as a source install has it.
    std::fs::remove_dir_all(v.conf("")).unwrap();
    run(Command::new("cp")
        .arg("-r")
        .arg(repo("tests/fixtures/stock/freeswitch-1.10.12/vanilla"))
        .arg(v.conf("")));
    let set = |h: &TestHost, rel: &str, from: &str, to: &str| {
        let text = h.read(rel).replace(from, to);
        std::fs::write(h.conf(rel), text).unwrap();
    };
    // pbx1: its own event socket password and default password.
    set(
        a,
        "autoload_configs/event_socket.conf.xml",
        "ClueCon",
        "Esl-Pbx1-Secret",
    );
    set(
        a,
        "vars.xml",
        "default_password=1234",
        "default_password=Default-Pbx1-Secret",
    );
    // pbx1 and pbx2: their own external IP (a value: one template, a variable per host).
    for (h, ip) in [(a, "203.0.113.1"), (b, "203.0.113.2")] {
        set(
            h,
            "vars.xml",
            "external_rtp_ip=stun:stun.freeswitch.org",
            &format!("external_rtp_ip={ip}"),
        );
    }
    // pbx2: another default password, a carrier gateway, an edited dialplan, planted things.
    set(
        b,
        "vars.xml",
        "default_password=1234",
        "default_password=Default-Pbx2-Secret",
    );
    set(
        b,
        "autoload_configs/event_socket.conf.xml",
        "ClueCon",
        "Esl-Pbx2-Secret",
    );
    std::fs::write(
        b.conf("sip_profiles/external/carrier.xml"),
        "<include>\n  <gateway name=\"carrier\">\n    <param name=\"username\" value=\"trunk7\"/>\n    <param name=\"realm\" value=\"sip.carrier.test\"/>\n    <param name=\"extension\" value=\"16465550100\"/>\n    <param name=\"password\" value=\"Carrier&amp;Trunk-Pw\"/>\n  </gateway>\n</include>\n",
    )
    .unwrap();
    set(
        b,
        "dialplan/default.xml",
        "<context",
        "<!-- edited by hand -->\n<context",
    );
    std::os::unix::fs::symlink("/etc/shadow", b.conf("dialplan/evil.xml")).unwrap();
    run(Command::new("mkfifo").arg(b.conf("directory/default/fifo.xml")));
    std::fs::write(
        b.conf("dialplan/latin1.xml"),
        b"<include>caf\xe9</include>\n",
    )
    .unwrap();
    std::fs::write(
        b.conf("dialplan/big.xml"),
        format!("<include>{}</include>\n", "x".repeat(200_000)),
    )
    .unwrap();
    // pbx3: secrets where the vanilla tree has placeholders, as attributes too.
    set(
        v,
        "autoload_configs/hash.conf.xml",
        "password=\"ClueCon\"",
        "password=\"Hash-Remote-Secret\"",
    );
    set(
        v,
        "autoload_configs/erlang_event.conf.xml",
        "value=\"ClueCon\"",
        "value=\"Erlang-Cookie-Secret\"",
    );
    // Two of pbx1's files on pbx3 too: one differs from pbx2's only in a secret (event
    // socket password), the other not at all (its commented-out password included).
    for rel in [
        "autoload_configs/event_socket.conf.xml",
        "sip_profiles/external/example.xml",
    ] {
        std::fs::copy(a.conf(rel), v.conf(rel)).unwrap();
    }
    tighten(a);
    tighten(b);
    tighten(v);
    std::fs::write(
        b.conf("directory/default/1001.xml"),
        "<include><user id=\"1001\"><params><param name=\"password\" value=\"World-Readable-Pw\"/></params></user></include>\n",
    )
    .unwrap();
    run(Command::new("chmod")
        .args(["0644"])
        .arg(b.conf("directory/default/1001.xml")));
}

fn assert_unadoptable_listed(out: &Out) {
    // What cannot be adopted is listed, per host, with its reason.
    for (rel, why) in [
        ("dialplan/evil.xml", "symbolic link"),
        ("directory/default/fifo.xml", "not a regular file"),
        ("dialplan/latin1.xml", "not UTF-8"),
        ("dialplan/big.xml", "larger than the limit of 100000 bytes"),
        (
            "directory/default/1001.xml",
            "every user on the host may read it",
        ),
    ] {
        assert!(
            out.stdout
                .lines()
                .any(|l| l.starts_with(&format!("pbx2: not adopted: {rel}: ")) && l.contains(why)),
            "{rel}: {}",
            out.all()
        );
    }
    assert!(
        out.stdout.contains("pbx1: 8 files adopted, 0 not adopted"),
        "{}",
        out.all()
    );
    assert!(
        out.stdout.contains("pbx2: 9 files adopted, 5 not adopted"),
        "{}",
        out.all()
    );
}

fn assert_no_plain_secret(dir: &Path, out: &Out) {
    // No secret in plain text anywhere in the project, nor in what the import printed.
    let written = files_under(dir);
    for s in SECRETS {
        for (path, bytes) in &written {
            assert!(!contains(bytes, s), "{s} in {path}");
        }
        assert!(!out.all().contains(s), "{s} printed");
    }
}

fn assert_templates_grouped(dir: &Path) {
    // Files that differ only in their secrets are one shared template, their secrets in
    // each host's vault file; a secret the same everywhere is in group_vars/all.age. A file
    // two hosts have in one shape and the third in another is one template for the two
    // (vars.xml of pbx1 and pbx2, which differ in default_password and external_rtp_ip, the
    // IP a variable in host_vars/HOST.yml) and one for the third; the edited
    // dialplan is one per host; pbx2's gateway is its own.
    let t = |rel: &str| dir.join("templates").join(rel).exists();
    assert!(t("autoload_configs/event_socket.conf.xml") && t("sip_profiles/external/example.xml"));
    assert!(
        t("variants/pbx1/vars.xml") && t("variants/pbx3/vars.xml") && !t("variants/pbx2/vars.xml")
    );
    let vars_xml = std::fs::read_to_string(dir.join("templates/variants/pbx1/vars.xml")).unwrap();
    assert!(
        vars_xml.contains("data=\"external_rtp_ip={{ vars_external_rtp_ip }}\""),
        "{vars_xml}"
    );
    for (h, ip) in [("pbx1", "203.0.113.1"), ("pbx2", "203.0.113.2")] {
        let hv = std::fs::read_to_string(dir.join(format!("inventory/host_vars/{h}.yml"))).unwrap();
        assert!(hv.contains(&format!("vars_external_rtp_ip: {ip}")), "{hv}");
    }
    let playbook = std::fs::read_to_string(dir.join("playbook.yml")).unwrap();
    assert!(
        playbook
            .lines()
            .any(|l| l.contains("when:") && l.contains(r#"["pbx1","pbx2"]"#)),
        "{playbook}"
    );
    assert!(!t("dialplan/default.xml"));
    assert!(t("variants/pbx1/dialplan/default.xml") && t("variants/pbx2/dialplan/default.xml"));
    assert!(t("variants/pbx2/sip_profiles/external/carrier.xml"));
    for f in [
        "host_vars/pbx1.age",
        "host_vars/pbx2.age",
        "host_vars/pbx3.age",
        "group_vars/all.age",
    ] {
        assert!(dir.join("inventory").join(f).exists(), "{f}");
    }
}

fn assert_no_second_import_and_limit(fleet: &Fleet, inv: &Path, dir: &Path) {
    // A second import never writes into the existing project.
    let listing = files_under(dir);
    let again = import(fleet, inv, dir, &[]);
    assert_ne!(again.code, 0);
    assert!(
        again.stderr.contains("is not an empty folder"),
        "{}",
        again.all()
    );
    assert_eq!(files_under(dir), listing);

    // `--limit` imports only the hosts it names.
    let one = tmp("import-project").join("one");
    let out = import(fleet, inv, &one, &["--limit", "pbx1"]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        !out.stdout.contains("pbx2") && !out.stdout.contains("pbx3"),
        "{}",
        out.all()
    );
    let hosts = std::fs::read_to_string(one.join("inventory/hosts.yml")).unwrap();
    assert!(hosts.contains("pbx1") && !hosts.contains("pbx2"), "{hosts}");
}

/// The read is consistent: while another run holds the host lock the host is refused (and
/// nothing is written, here or there); once it is free, the import reads under the lock,
/// shared, on the existing lock file, leaving the private folder exactly as it was.
#[test]
fn import_reads_under_the_host_lock_and_leaves_it_as_it_was() {
    let fleet = Fleet::new("import-lock", 1);
    let h = fleet.host("pbx1");
    tighten(h);
    let inv = fleet.inventory("inv.yml", &|_, _| String::new());
    // A past run left switchyard's private folder and its lock file.
    let private = h.conf(".switchyard");
    std::fs::create_dir(&private).unwrap();
    run(Command::new("chmod").arg("0700").arg(&private));
    std::fs::write(private.join("lock"), "").unwrap();
    std::fs::write(
        private.join("lock.owner"),
        "ops@ctl apply pid 42 since then\n",
    )
    .unwrap();
    let mut holder = Command::new("flock")
        .args(["-x", "--no-fork"])
        .arg(private.join("lock"))
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = snapshot(&h.conf(""));
    let dir = tmp("import-lock-project").join("p");
    let out = import(&fleet, &inv, &dir, &[]);
    let _ = holder.kill();
    let _ = holder.wait();
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stdout.contains("pbx1: failed: another switchyard run is changing this host (lock held by ops@ctl apply pid 42"),
        "{}",
        out.all()
    );
    assert!(!dir.exists(), "a project was written for no host");

    let out = import(&fleet, &inv, &dir, &[]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("(read under the host lock)"),
        "{}",
        out.all()
    );
    assert_eq!(snapshot(&h.conf("")), before, "the import changed the PBX");
    let c = check(&fleet, &dir);
    assert_eq!(c.code, 0, "{}", c.all());
    assert!(
        c.all().contains("hosts: 0 changed, 1 ok, 0 failed"),
        "{}",
        c.all()
    );
}
