//! Every start: make the data dir private (create it 0700, take group and
//! other's access off what this process owns, refuse what it cannot fix),
//! open the store and, only when it is empty, seed user `admin` with every
//! role and the first signing key. A store that already holds data is never
//! re-seeded, whatever the environment says.

use anyhow::{Context, bail};
use std::fs;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::clock::Clock;
use crate::config::{ADMIN_PASSWORD_ENV, Settings};
use crate::domain::{Password, Roles, Username};
use crate::password::Hasher;
use crate::store::{KeyRecord, Opened, Store, StoreError, UserRecord, new_user_record};
use crate::tokens;

pub const ADMIN_USERNAME: &str = "admin";
pub const INITIAL_PASSWORD_FILE: &str = "initial-admin-password";
/// Written (and synced) once the seed has committed. An empty store next to
/// it means the store was lost or damaged (an engine may open a damaged
/// store as empty: sled, the engine before redb, did after unclean stops), never a first start.
pub const SEEDED_MARKER: &str = "store-initialized";

/// Opens the store in `settings.data_dir` (made private first, see
/// [`secure_data_dir`]), seeding it if it is empty.
pub fn open_store(settings: &Settings, hasher: &Hasher, clock: &Clock) -> anyhow::Result<Store> {
    let dir = &settings.data_dir;
    secure_data_dir(dir)?;
    warn_if_tls_key_is_shared(settings);
    let marker = dir.join(SEEDED_MARKER);
    if !marker.exists() && fs::symlink_metadata(Store::path_in(dir)).is_err() {
        // A first start: the store appears only once seeded.
        seed(settings, hasher, clock.now(), |admin, key| {
            Store::create_seeded(dir, settings.cache_capacity_bytes, admin, key)
        })?;
        write_marker(&marker)?;
    }
    let (store, opened) = Store::open(dir, settings.cache_capacity_bytes)
        .map_err(|e| crate::backups::explain_refusal(e, dir))?;
    match opened {
        Opened::Empty if marker.exists() => bail!(
            "the store in {} is empty or unreadable, but this data dir was initialized before ({} exists): \
             the user database was lost or damaged. Refusing to start rather than seed a new admin; \
             restore the data dir from a backup, or remove it entirely to start afresh. {}",
            dir.display(),
            marker.display(),
            crate::backups::restore_hint(dir)
        ),
        // An empty store directory without the marker: left by an earlier
        // version's first start, killed before its seed committed.
        Opened::Empty => {
            seed(settings, hasher, clock.now(), |admin, key| {
                store.initialize(admin, key)
            })?;
            write_marker(&marker)?;
        }
        Opened::Ready if !marker.exists() => write_marker(&marker)?,
        Opened::Ready => {}
    }
    Ok(store)
}

/// Makes the first admin and signing key and has `commit` store them.
fn seed(
    settings: &Settings,
    hasher: &Hasher,
    now: u64,
    commit: impl FnOnce(&UserRecord, &KeyRecord) -> Result<(), StoreError>,
) -> anyhow::Result<()> {
    let (password, generated) = initial_admin_password(settings)?;
    let hash = hasher.hash_blocking(&password)?;
    let username = Username::parse(ADMIN_USERNAME).map_err(anyhow::Error::msg)?;
    let admin = new_user_record(&username, hash, Roles::ALL, now);
    let key = tokens::new_key_record(now, settings.signing_alg)?;
    // The file is written before the seed commits: a crash in between
    // leaves an empty store, and the next start writes a new file.
    let file = if generated {
        Some(write_secret_file(&settings.data_dir, password.expose())?)
    } else {
        None
    };
    commit(&admin, &key)?;
    match file {
        Some(path) => log::warn!(
            "seeded user \"admin\" with a generated password; it is in {} (mode 0600): log in and change it",
            path.display()
        ),
        None => log::info!("seeded user \"admin\" with the configured initial password"),
    }
    Ok(())
}

fn write_marker(path: &Path) -> anyhow::Result<()> {
    let f = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// The mode bits of group and other: none may be set on anything in the
/// data dir.
const GROUP_OTHER: u32 = 0o077;

/// Makes the data dir private, at every start (and before `--daemon`
/// detaches): it holds the signing keys and every password hash, so
/// whoever can read it can forge any user's token. Creates it (mode 0700)
/// if it is missing. Then, top down (a directory is closed before what it
/// holds is looked at), everything in it that group or other may read,
/// write or enter: what this process's user owns loses those bits (each
/// change logged); anything else is refused, naming each path, and nothing
/// is served. Symbolic links inside are left alone (their own mode means
/// nothing; what they point to is not the store's), and another user's
/// directory is not entered (its own mode decides who reaches into it).
pub fn secure_data_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() && !dir.is_dir() {
        bail!("data dir {} exists but is not a directory", dir.display());
    }
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create data dir {}", dir.display()))?;
    let me = rustix::process::geteuid().as_raw();
    let mut foreign = Vec::new();
    // The data dir itself may be a symbolic link (systemd's
    // `DynamicUser=` makes /var/lib/NAME one): its target is what counts.
    let meta = fs::metadata(dir).with_context(|| format!("cannot stat {}", dir.display()))?;
    make_private_as(dir, &meta, me, &mut foreign)?;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = fs::read_dir(&d).with_context(|| format!("cannot read {}", d.display()))?;
        for entry in entries {
            let path = entry
                .with_context(|| format!("cannot read {}", d.display()))?
                .path();
            let meta = fs::symlink_metadata(&path)
                .with_context(|| format!("cannot stat {}", path.display()))?;
            if meta.file_type().is_symlink() {
                continue;
            }
            make_private_as(&path, &meta, me, &mut foreign)?;
            // Another user's directory is judged by its own mode: group
            // and other reach nothing through it unless that lets them (it
            // is refused then), and this user may not be able to list it
            // (`lost+found` when the data dir is a file system's root).
            if meta.is_dir() && meta.uid() == me {
                stack.push(path);
            }
        }
    }
    let what = format!(
        "the data dir {} holds the signing keys and every password hash",
        dir.display()
    );
    refuse_foreign(&foreign, &what, dir, me)
}

/// [`secure_data_dir`] for one file outside the data dir (the `--daemon`
/// log file given with `--log-file`).
pub fn secure_file(path: &Path) -> anyhow::Result<()> {
    let me = rustix::process::geteuid().as_raw();
    let meta = fs::metadata(path).with_context(|| format!("cannot stat {}", path.display()))?;
    let mut foreign = Vec::new();
    make_private_as(path, &meta, me, &mut foreign)?;
    refuse_foreign(&foreign, "the log file holds the audit trail", path, me)
}

/// Takes group and other's bits off `path` if user `me` owns it; lists it
/// in `foreign` if someone else does.
fn make_private_as(
    path: &Path,
    meta: &fs::Metadata,
    me: u32,
    foreign: &mut Vec<String>,
) -> anyhow::Result<()> {
    let mode = meta.mode() & 0o7777;
    if mode & GROUP_OTHER == 0 {
        return Ok(());
    }
    if meta.uid() != me {
        foreign.push(format!(
            "{} (mode {mode:04o}, owner uid {})",
            path.display(),
            meta.uid()
        ));
        return Ok(());
    }
    let private = mode & !GROUP_OTHER;
    fs::set_permissions(path, fs::Permissions::from_mode(private))
        .with_context(|| format!("cannot make {} private (chmod go-rwx)", path.display()))?;
    log::warn!(
        "{} was mode {mode:04o}, open to group or other; made it {private:04o}",
        path.display()
    );
    Ok(())
}

/// Fails, naming what group or other may reach that `me` cannot close.
fn refuse_foreign(foreign: &[String], what: &str, path: &Path, me: u32) -> anyhow::Result<()> {
    const SHOWN: usize = 5;
    if foreign.is_empty() {
        return Ok(());
    }
    let mut list = foreign[..foreign.len().min(SHOWN)].join(", ");
    if foreign.len() > SHOWN {
        list.push_str(&format!(" and {} more", foreign.len() - SHOWN));
    }
    bail!(
        "refusing to start: {what}, but group or other may reach {list}, which this process \
         (uid {me}) does not own and so cannot make private. Give it to the daemon's user and \
         close it (chown -R {me} {path} && chmod -R go-rwx {path}), then start again",
        path = path.display()
    )
}

/// A TLS key of the operator's outside the data dir is the operator's
/// file (a group such as `ssl-cert` may rightly read it): warned about,
/// never changed or refused. One inside the data dir was made private
/// with the rest.
fn warn_if_tls_key_is_shared(settings: &Settings) {
    let crate::tls::TlsSource::Files { key, .. } = &settings.tls else {
        return;
    };
    if let Ok(meta) = fs::metadata(key)
        && meta.mode() & GROUP_OTHER != 0
    {
        log::warn!(
            "the TLS key {} is mode {:04o}: group or other may read it",
            key.display(),
            meta.mode() & 0o7777
        );
    }
}

/// The first admin's password: `ENGINE_AUTH_ADMIN_PASSWORD`, then
/// `--admin-password-file`, then systemd's
/// `$CREDENTIALS_DIRECTORY/admin-password`, else a generated one
/// (returned with `true`).
fn initial_admin_password(settings: &Settings) -> anyhow::Result<(Password, bool)> {
    let given = if let Some(p) = &settings.admin_password {
        Some((p.expose().to_string(), ADMIN_PASSWORD_ENV.to_string()))
    } else if let Some(f) = &settings.admin_password_file {
        Some((read_password_file(f)?, f.display().to_string()))
    } else {
        match std::env::var_os("CREDENTIALS_DIRECTORY") {
            Some(d) if Path::new(&d).join("admin-password").exists() => {
                let f = Path::new(&d).join("admin-password");
                Some((read_password_file(&f)?, f.display().to_string()))
            }
            _ => None,
        }
    };
    match given {
        Some((p, source)) => {
            let p = Password::parse(p)
                .map_err(|m| anyhow::anyhow!("initial admin password from {source}: {m}"))?;
            Ok((p, false))
        }
        None => Ok((generate_password()?, true)),
    }
}

/// Reads a password file, dropping one trailing line break (editors and
/// `echo` add one); nothing else is trimmed.
pub fn read_password_file(path: &Path) -> anyhow::Result<String> {
    let mut s = fs::read_to_string(path)
        .with_context(|| format!("cannot read password file {}", path.display()))?;
    if s.ends_with('\n') {
        s.pop();
        if s.ends_with('\r') {
            s.pop();
        }
    }
    Ok(s)
}

/// 24 characters from a 62-letter alphabet: about 143 bits.
pub fn generate_password() -> anyhow::Result<Password> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut out = String::with_capacity(24);
    while out.len() < 24 {
        let mut buf = [0u8; 32];
        getrandom::fill(&mut buf).map_err(|e| anyhow::anyhow!("OS random source failed: {e}"))?;
        // 248 = 4 * 62: rejecting larger bytes keeps every letter equally likely.
        for b in buf.into_iter().filter(|b| *b < 248) {
            if out.len() < 24 {
                out.push(ALPHABET[(b % 62) as usize] as char);
            }
        }
    }
    Password::parse(out).map_err(anyhow::Error::msg)
}

/// Writes `<data-dir>/initial-admin-password` with mode 0600 and syncs it.
pub fn write_secret_file(data_dir: &Path, secret: &str) -> anyhow::Result<PathBuf> {
    let path = data_dir.join(INITIAL_PASSWORD_FILE);
    let tmp = data_dir.join(format!(".{INITIAL_PASSWORD_FILE}.tmp"));
    let _ = fs::remove_file(&tmp);
    let mut f = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    f.write_all(secret.as_bytes())?;
    f.write_all(b"\n")?;
    f.sync_all()?;
    fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
