//! podman and skopeo on the same keychain, for real: Debian's podman 4.3 and skopeo 1.9
//! against Debian's docker-registry (htpasswd) on loopback. After `configure`, `podman login`
//! stores through the helper and writes no plaintext anywhere, docker's config.json keeps its
//! credsStore, `skopeo copy` uses the helper's credential, and `configure --undo` removes
//! exactly what was added. podman runs with its storage in the test's temp dir (vfs).

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::env;
use crate::support::files_under;
use crate::support::keyring::UNREACHABLE_HUB;
use crate::support::output::{describe, stderr};
use crate::support::tools::{helper_bin, require_tool, skip};

const USER: &str = "registry-user";
const PASSWORD: &str = "registry-password-7h3";

struct World {
    root: tempfile::TempDir,
    registry: Child,
    port: u16,
    service: String,
}

impl World {
    fn start() -> Option<World> {
        for tool in [
            "podman",
            "skopeo",
            "docker-registry",
            "htpasswd",
            "tar",
            "gzip",
        ] {
            if !require_tool(tool) {
                return None;
            }
        }
        let root = tempfile::Builder::new()
            .prefix("dch-ct-")
            .tempdir()
            .unwrap();
        for d in ["home", "xdg", "tmp", "docker", "reg/data", "img"] {
            std::fs::create_dir_all(root.path().join(d)).unwrap();
        }
        std::fs::set_permissions(
            root.path().join("xdg"),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        std::fs::write(
            root.path().join("containers.conf"),
            "[engine]\nlock_type = \"file\"\n",
        )
        .unwrap();
        let htpasswd = env::command("htpasswd", &[])
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .unwrap();
        assert!(htpasswd.status.success());
        std::fs::write(root.path().join("reg/htpasswd"), htpasswd.stdout).unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let reg = root.path().join("reg");
        std::fs::write(
            reg.join("config.yml"),
            format!(
                "version: 0.1\nlog:\n  level: warn\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n  secret: not-a-secret\nauth:\n  htpasswd:\n    realm: test-realm\n    path: {}\n",
                reg.join("data").display(),
                reg.join("htpasswd").display()
            ),
        )
        .unwrap();
        // Its own HOME, so that nothing of the runner's configures it.
        let registry = env::command(
            "docker-registry",
            &env::base_vars(&root.path().join("reg"), &root.path().join("reg")),
        )
        .arg("serve")
        .arg(reg.join("config.yml"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
        let world = World {
            root,
            registry,
            port,
            service: crate::support::unique_name("dch-ct"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "docker-registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        world.make_image();
        Some(world)
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn registry(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// A one-layer OCI image layout, made without network (the layout of
    /// opencontainers/image-spec: oci-layout, index.json, blobs).
    fn make_image(&self) {
        let script = r#"set -e
D=$1; W=$(mktemp -d); mkdir -p $D/blobs/sha256 $W/r; echo hello > $W/r/hello.txt
tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C $W/r -cf $W/l.tar hello.txt
DIFF=$(sha256sum $W/l.tar | cut -d' ' -f1); gzip -n -c $W/l.tar > $W/l.tgz
L=$(sha256sum $W/l.tgz | cut -d' ' -f1); LS=$(stat -c %s $W/l.tgz); mv $W/l.tgz $D/blobs/sha256/$L
printf '{"architecture":"amd64","os":"linux","config":{},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' $DIFF > $W/c
C=$(sha256sum $W/c | cut -d' ' -f1); CS=$(stat -c %s $W/c); mv $W/c $D/blobs/sha256/$C
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%s}]}' $C $CS $L $LS > $W/m
M=$(sha256sum $W/m | cut -d' ' -f1); MS=$(stat -c %s $W/m); mv $W/m $D/blobs/sha256/$M
printf '{"imageLayoutVersion":"1.0.0"}' > $D/oci-layout
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"annotations":{"org.opencontainers.image.ref.name":"1"}}]}' $M $MS > $D/index.json
rm -rf $W"#;
        let out = env::command(
            "bash",
            &[("TMPDIR".into(), self.path("tmp").display().to_string())],
        )
        .args(["-c", script, "make-image"])
        .arg(self.path("img"))
        .output()
        .unwrap();
        assert!(out.status.success(), "make image: {out:?}");
    }

    /// The environment of every command: a clean one with this world's HOME, runtime
    /// directory, docker config and keychain service, and the helper on PATH.
    fn command(&self, program: &str) -> Command {
        let mut c = env::command(
            program,
            &env::base_vars(&self.path("home"), &self.path("xdg")),
        );
        c.env("PATH", env::path_with(&[&env::helper_dir()]))
            .env("DOCKER_CONFIG", self.path("docker"))
            .env("CONTAINERS_CONF", self.path("containers.conf"))
            .env("DOCKER_CREDENTIAL_HUB_BACKEND", "keyutils")
            .env("DOCKER_CREDENTIAL_HUB_SERVICE", &self.service)
            .env("DOCKER_HUB_API_URL", UNREACHABLE_HUB)
            .stdin(Stdio::null());
        c
    }

    fn podman(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.command("podman");
        c.arg("--root")
            .arg(self.path("root"))
            .arg("--runroot")
            .arg(self.path("runroot"))
            .arg("--tmpdir")
            .arg(self.path("tmp"))
            .args(["--storage-driver", "vfs"])
            .args(args);
        run(c, stdin)
    }

    fn helper(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut c = self.command(helper_bin().to_str().unwrap());
        c.args(args);
        run(c, stdin)
    }

    fn skopeo_push(&self) -> Output {
        let mut c = self.command("skopeo");
        c.args(["copy", "--dest-tls-verify=false"])
            .arg(format!("oci:{}:1", self.path("img").display()))
            .arg(format!("docker://{}/test:1", self.registry()));
        run(c, None)
    }

    fn listed(&self) -> std::collections::BTreeMap<String, String> {
        serde_json::from_slice(&self.helper(&["list"], None).stdout).unwrap()
    }

    fn drop_in(&self) -> PathBuf {
        self.path("home/.config/containers/registries.conf.d/50-docker-credential-hub.conf")
    }

    /// Every file under HOME, the runtime directory and docker's config that holds the
    /// registry password, or its base64 `user:password`.
    fn plaintext_files(&self) -> Vec<PathBuf> {
        use base64::Engine;
        let b64 = base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"));
        let mut found = Vec::new();
        for dir in ["home", "xdg", "docker"] {
            for p in files_under(&self.path(dir)) {
                let text =
                    String::from_utf8_lossy(&std::fs::read(&p).unwrap_or_default()).into_owned();
                if text.contains(PASSWORD) || text.contains(&b64) {
                    found.push(p);
                }
            }
        }
        found
    }
}

impl Drop for World {
    fn drop(&mut self) {
        let _ = self.registry.kill();
        let _ = self.registry.wait();
        for url in self.listed().keys() {
            let _ = self.helper(&["erase"], Some(url));
        }
    }
}

fn run(mut c: Command, stdin: Option<&str>) -> Output {
    use std::io::Write;
    c.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = c.spawn().expect("spawn");
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    child.wait_with_output().unwrap()
}

#[test]
fn podman_and_skopeo_share_the_keychain_after_configure_and_undo_removes_only_ours() {
    if unsafe { libc::geteuid() } != 0 {
        skip("the podman and skopeo tier runs podman as root in a private storage root");
        return;
    }
    let Some(w) = World::start() else {
        return;
    };
    // A drop-in of the user's own, which must survive everything.
    let mine = w.path("home/.config/containers/registries.conf.d/10-mine.conf");
    std::fs::create_dir_all(mine.parent().unwrap()).unwrap();
    std::fs::write(
        &mine,
        "# mine\nunqualified-search-registries = [\"docker.io\"]\n",
    )
    .unwrap();

    // Before: skopeo has no credential and is refused.
    let out = w.skopeo_push();
    assert!(
        !out.status.success(),
        "pushed without credentials: {}",
        describe(&out)
    );

    let out = w.helper(&["configure"], None);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(w.drop_in().is_file(), "{}", describe(&out));
    let config = w.path("docker/config.json");
    let configured = std::fs::read(&config).unwrap();
    assert!(String::from_utf8_lossy(&configured).contains("\"credsStore\": \"hub\""));

    let out = w.podman(
        &[
            "login",
            &w.registry(),
            "-u",
            USER,
            "--password-stdin",
            "--tls-verify=false",
        ],
        Some(&format!("{PASSWORD}\n")),
    );
    assert!(out.status.success(), "podman login: {}", describe(&out));
    assert_eq!(
        w.listed().get(&w.registry()).map(String::as_str),
        Some(USER)
    );
    assert_eq!(
        std::fs::read(&config).unwrap(),
        configured,
        "podman login rewrote config.json"
    );
    assert!(
        w.plaintext_files().is_empty(),
        "plaintext: {:?}",
        w.plaintext_files()
    );
    assert!(!w.path("xdg/containers/auth.json").exists());

    let out = w.skopeo_push();
    assert!(
        out.status.success(),
        "skopeo copy with the helper's credential: {}",
        describe(&out)
    );

    let out = w.podman(&["logout", &w.registry()], None);
    assert!(out.status.success(), "podman logout: {}", describe(&out));
    assert!(!w.listed().contains_key(&w.registry()));
    assert_eq!(
        std::fs::read(&config).unwrap(),
        configured,
        "podman logout rewrote config.json"
    );

    let out = w.helper(&["configure", "--undo"], None);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!w.drop_in().exists(), "{}", describe(&out));
    assert_eq!(
        std::fs::read_to_string(&mine).unwrap(),
        "# mine\nunqualified-search-registries = [\"docker.io\"]\n"
    );
}

/// A `credential-helpers` the user set is theirs: configure does not fight it, says so, and
/// writes nothing for the containers tools.
#[test]
fn a_users_own_credential_helpers_setting_is_left_alone() {
    let Some(w) = World::start() else {
        return;
    };
    let theirs = w.path("home/.config/containers/registries.conf");
    std::fs::create_dir_all(theirs.parent().unwrap()).unwrap();
    let text = "credential-helpers = [\"secretservice\"]\n";
    std::fs::write(&theirs, text).unwrap();
    let out = w.helper(&["configure"], None);
    assert!(out.status.success(), "{}", describe(&out));
    assert!(!w.drop_in().exists());
    assert_eq!(std::fs::read_to_string(&theirs).unwrap(), text);
    let err = stderr(&out);
    assert!(
        err.contains("left alone") && err.contains("credential-helpers"),
        "{err}"
    );
}
