//! `qshm completions SHELL` and `qshm man [VERB]` generate, from the same definitions as
//! `--help`, and what they generate is well-formed where a checker is at hand.

mod common;

use common::{qshm, Watchdog};

#[test]
fn completions_for_every_shell() {
    let _w = Watchdog::new("completions_for_every_shell");
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = qshm(&["completions", shell]).ok().out();
        for word in ["qshm", "doctor", "nonblock", "no-lock", "systemv"] {
            assert!(out.contains(word), "{shell}: no {word:?} in\n{out}");
        }
    }
    // bash reads the script without a syntax error, and it completes verbs.
    #[cfg(unix)]
    if std::path::Path::new("/bin/bash").exists() {
        let script = qshm(&["completions", "bash"]).ok().out();
        let dir = std::env::temp_dir().join(format!("qshmtest-compl-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("qshm.bash");
        std::fs::write(&file, script).unwrap();
        let out = std::process::Command::new("/bin/bash")
            .arg("-c")
            .arg(format!(
                "source '{}' && COMP_WORDS=(qshm rea); COMP_CWORD=1; _qshm qshm rea qshm && echo \"${{COMPREPLY[@]}}\"",
                file.display()
            ))
            .output()
            .unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        assert!(out.status.success(), "{out:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "read",
            "{out:?}"
        );
    }
    qshm(&["completions", "tcsh"]).fails(2, "invalid value");
}

#[test]
fn man_pages_for_the_tool_and_each_verb() {
    let _w = Watchdog::new("man_pages_for_the_tool_and_each_verb");
    let page = qshm(&["man"]).ok().out();
    assert!(page.contains(".TH qshm 1"), "{page}");
    for section in [".SH NAME", ".SH SYNOPSIS", ".SH OPTIONS", ".SH SUBCOMMANDS"] {
        assert!(page.contains(section), "no {section}");
    }
    assert!(page.contains("doctor"), "{page}");
    let read = qshm(&["man", "read"]).ok().out();
    assert!(read.contains(".TH qshm-read 1"), "{read}");
    assert!(
        read.contains("\\-\\-nonblock") && read.contains("\\-\\-no\\-lock"),
        "{read}"
    );
    qshm(&["man", "nope"]).fails(2, "no verb `nope`");
}
