//! The CI pipelines of examples/ci/ run as written: their `homebase`
//! commands, in order, on fresh runner folders that share only the state on
//! PostgreSQL and the saved plan passed as an artifact (README "Running from CI").

use crate::common;
use crate::common::pg;

use std::path::Path;

use common::TestEnv;
use pg::PgServer;

const SMALL: &str = "id,given_name,family_name,department\n\
S1,Anna,Schmidt,Kämmerei\n\
S2,Paul,Weber,Informationstechnik\n\
S3,Lena,Koch,Ordnungsamt\n";

/// The `homebase …` command lines of a pipeline file, in order, by job:
/// (job, arguments).
fn commands(file: &str) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(file))
        .expect("the pipeline file");
    let mut job = String::new();
    let mut found = Vec::new();
    for line in text.lines() {
        // A job is a key at the first level of `jobs:` (GitHub) or the top (GitLab).
        let indent = line.len() - line.trim_start().len();
        let key = line.trim_end().strip_suffix(':');
        if let Some(key) = key.filter(|k| !k.trim().contains(' ')) {
            if indent == 0 || (indent == 2 && file.contains("github")) {
                job = key.trim().to_string();
            }
        }
        let command = line
            .trim_start()
            .trim_start_matches("- ")
            .trim_start_matches("run: ");
        if let Some(args) = command.strip_prefix("homebase ") {
            found.push((
                job.clone(),
                args.split_whitespace().map(String::from).collect(),
            ));
        }
    }
    found
}

/// The shipped configuration, with the servers' files (the gateway's
/// wg0.conf, the LDIF export) outside the runners' folders.
fn config(servers: &Path) -> String {
    let shipped = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/homebase.yaml"))
        .expect("homebase.yaml");
    shipped
        .replace(
            "    kind: wireguard-file\n",
            &format!(
                "    kind: wireguard-file\n    path: {}\n",
                servers.join("wg0.conf").display()
            ),
        )
        .replace(
            "    kind: local\n",
            &format!(
                "    kind: local\n    ldif: {}\n",
                servers.join("directory.ldif").display()
            ),
        )
}

/// One pipeline: each job on a fresh checkout; the plan job's artifact
/// (plan.json, plan.md) handed to the apply job.
fn run_pipeline(server: &PgServer, servers: &Path, file: &str, staff: &str) -> Vec<TestEnv> {
    let password = std::fs::read_to_string(server.password_file()).expect("password");
    let state = format!("{}&schema=ci", server.url());
    let mut runners: Vec<(String, TestEnv)> = Vec::new();
    for (job, args) in commands(file) {
        if runners.last().is_none_or(|(name, _)| *name != job) {
            let env = TestEnv::new();
            env.copy_examples();
            env.write("homebase.yaml", config(servers));
            env.write("staff.csv", staff);
            if let Some((_, previous)) = runners.last() {
                for artifact in ["plan.json", "plan.md"] {
                    if previous.exists(artifact) {
                        env.write(artifact, previous.read(artifact));
                    }
                }
            }
            runners.push((job.clone(), env));
        }
        let env = &runners.last().expect("a runner").1;
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let out = env
            .std_command(&args)
            .env("HOMEBASE_STATE", &state)
            .env("PGSSLROOTCERT", server.ca())
            .env("PGPASSWORD", password.trim())
            .env("CI_JOB_ID", "4711")
            .output()
            .expect("run homebase");
        assert_eq!(
            out.status.code(),
            Some(0),
            "{file}, job {job}: `homebase {}`\n{}",
            args.join(" "),
            common::describe(&out)
        );
    }
    runners.into_iter().map(|(_, env)| env).collect()
}

fn pipelines_run_as_written(file: &str) {
    let Some(server) = PgServer::start(file) else {
        return;
    };
    let servers = tempfile::tempdir().expect("temp dir");
    let jobs: Vec<String> = commands(file).into_iter().map(|(job, _)| job).collect();
    assert!(
        jobs.iter().any(|j| j == "plan") && jobs.last().is_some_and(|j| j == "apply"),
        "{file}: {jobs:?}"
    );

    // The merge: planned, reviewed (plan.md), applied from the saved plan.
    let runners = run_pipeline(&server, servers.path(), file, SMALL);
    let plan = &runners[0];
    assert!(plan.read_string("plan.md").contains("# homebase plan"));
    let apply = runners.last().expect("the apply job");
    assert_eq!(apply.bundle_dirs().len(), 3, "the new persons' bundles");
    assert_eq!(
        server.psql("SELECT count(*) FROM ci.persons").trim(),
        "3",
        "the state on the server"
    );
    assert!(
        server
            .psql("SELECT ci_job FROM ci.runs")
            .contains("CI_JOB_ID=4711"),
        "the audit names the CI job"
    );

    // The next pipeline on fresh runners changes nothing and re-keys nobody.
    let again = run_pipeline(&server, servers.path(), file, SMALL);
    assert!(again[0]
        .read_string("plan.md")
        .contains("3 delivered bundle(s)"));
    assert!(again.iter().all(|env| env.bundle_dirs().is_empty()));
}

#[test]
fn the_gitlab_pipeline_runs_as_written() {
    pipelines_run_as_written("examples/ci/gitlab-ci.yml");
}

#[test]
fn the_github_workflow_runs_as_written() {
    pipelines_run_as_written("examples/ci/github-actions.yml");
}
