//! The EAP user database (`/etc/oxisec/users.toml`) and `oxisec user`.
//!
//! EAP-MSCHAPv2 (RFC 2759) — what Windows, macOS/iOS and Android send for a
//! user name and password — never needs the password itself on the gateway,
//! only its NT hash: MD4 of the password in UTF-16LE (RFC 2759 §8.3,
//! `NtPasswordHash`). So that is all this file stores:
//!
//! ```toml
//! [[user]]
//! name = "alice"
//! nt_hash = "44EBBA8D5312B8D611474411F56989AE"
//! groups = ["staff"]
//! disabled = false
//! ```
//!
//! The NT hash is password-equivalent for MSCHAPv2 (whoever has it can
//! authenticate as the user), so the file must be private: it is written
//! with mode 0600 and [`UserDb::load`] refuses a file that group or others
//! may read, like `psk_file` in the daemon configuration.
//!
//! # User name matching
//!
//! strongSwan's eap-mschapv2 plugin turns the name in the MSCHAPv2 Response
//! into an identity (`identification_create_from_string`): a plain `alice`
//! or `DOMAIN\alice` becomes an FQDN identity and `alice@corp` an RFC 822
//! one, and both compare with `strncasecmp`, so user names match without
//! regard to ASCII case there; Windows treats account names the same way.
//! The challenge hash itself covers the name exactly as the peer sent it,
//! after the last backslash (RFC 2759 §8.2 `ChallengeHash` uses the user name
//! without the domain), which works whatever the case. [`UserDb`] does the
//! same: an exact match wins, otherwise the ASCII-case-insensitive one, and
//! `DOMAIN\alice` finds `alice` when no user is literally named so. Names
//! that differ only in ASCII case cannot both be added.
use std::fmt;
use std::io::{BufRead, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use md4::{Digest, Md4};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

/// Where the daemon and `oxisec user` look unless told otherwise.
pub const DEFAULT_USERS_FILE: &str = "/etc/oxisec/users.toml";
/// Longest user name accepted (Windows' limit for a user principal's
/// SAM name is 20, an RFC 822 name 64 in its local part; 64 is generous).
pub const MAX_NAME_CHARS: usize = 64;
/// RFC 2759 §8.3: the password is at most 256 Unicode characters.
pub const MAX_PASSWORD_CHARS: usize = 256;
/// A users file larger than this is not a users file.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Why the user database could not be read, changed or written.
#[derive(Debug, thiserror::Error)]
pub enum UsersError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is accessible by group/others (mode {mode:04o}); it holds password-equivalent NT hashes: run `chmod 600 {path}`"
    )]
    Permissions { path: String, mode: u32 },
    #[error("{path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid user name {name:?}: {reason}")]
    InvalidName { name: String, reason: &'static str },
    #[error("{path}: user {name:?}: nt_hash must be 32 hexadecimal digits")]
    BadHash { path: String, name: String },
    #[error("user {name:?} already exists{}", .existing.as_ref().map(|e| format!(" (as {e:?}; names are compared without regard to case)")).unwrap_or_default())]
    Exists {
        name: String,
        existing: Option<String>,
    },
    #[error("no user {0:?}")]
    NoSuchUser(String),
    #[error("invalid password: {0}")]
    BadPassword(&'static str),
}

/// One user. The NT hash is wiped when the user is dropped and never shown
/// by `Debug`.
#[derive(Clone)]
pub struct User {
    name: String,
    nt_hash: Zeroizing<[u8; 16]>,
    groups: Vec<String>,
    disabled: bool,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("name", &self.name)
            .field("nt_hash", &"<redacted>")
            .field("groups", &self.groups)
            .field("disabled", &self.disabled)
            .finish()
    }
}

impl User {
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn groups(&self) -> &[String] {
        &self.groups
    }
    pub fn disabled(&self) -> bool {
        self.disabled
    }
}

/// The user database: names, NT hashes, groups, disabled flags.
#[derive(Debug, Clone, Default)]
pub struct UserDb {
    users: Vec<User>,
}

/// The file's schema.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    user: Vec<RawUser>,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUser {
    name: String,
    nt_hash: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
    #[serde(default)]
    disabled: bool,
}

impl Drop for RawUser {
    fn drop(&mut self) {
        self.nt_hash.zeroize();
    }
}

/// RFC 2759 §8.3 `NtPasswordHash`: MD4 over the password in UTF-16LE.
pub fn nt_password_hash(password: &str) -> Zeroizing<[u8; 16]> {
    let mut utf16 = Zeroizing::new(Vec::with_capacity(password.len() * 2));
    for unit in password.encode_utf16() {
        utf16.extend_from_slice(&unit.to_le_bytes());
    }
    let mut out = Zeroizing::new([0u8; 16]);
    out.copy_from_slice(&Md4::digest(utf16.as_slice()));
    out
}

/// Checks a user name: 1–64 characters, no control characters, no `"`
/// (which would need escaping in every log and profile it lands in), no
/// leading or trailing white space (invisible in a prompt, so a sure
/// login failure).
pub fn check_name(name: &str) -> Result<(), UsersError> {
    let bad = |reason| {
        Err(UsersError::InvalidName {
            name: name.to_owned(),
            reason,
        })
    };
    let n = name.chars().count();
    if n == 0 {
        return bad("empty");
    }
    if n > MAX_NAME_CHARS {
        return bad("longer than 64 characters");
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character");
    }
    if name.contains('"') {
        return bad("contains '\"'");
    }
    if name.starts_with(char::is_whitespace) || name.ends_with(char::is_whitespace) {
        return bad("starts or ends with white space");
    }
    Ok(())
}

/// Checks a password for MSCHAPv2: non-empty, at most 256 characters, no
/// line breaks (it is read line by line).
pub fn check_password(password: &str) -> Result<(), UsersError> {
    if password.is_empty() {
        return Err(UsersError::BadPassword("empty"));
    }
    if password.chars().count() > MAX_PASSWORD_CHARS {
        return Err(UsersError::BadPassword(
            "longer than 256 characters (RFC 2759 §8.3)",
        ));
    }
    if password.contains(['\n', '\r']) {
        return Err(UsersError::BadPassword("contains a line break"));
    }
    Ok(())
}

fn io_err(path: &Path, source: std::io::Error) -> UsersError {
    UsersError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// The permission bits when group or others have any access.
#[cfg(unix)]
fn group_other_mode(meta: &std::fs::Metadata) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    (mode & 0o077 != 0).then_some(mode)
}

#[cfg(not(unix))]
fn group_other_mode(_meta: &std::fs::Metadata) -> Option<u32> {
    None
}

fn parse_hash(hex: &str) -> Option<[u8; 16]> {
    let hex = hex.as_bytes();
    if hex.len() != 32 {
        return None;
    }
    let mut out = [0u8; 16];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out[i] = (hi << 4 | lo) as u8;
    }
    Some(out)
}

fn to_hex_upper(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[usize::from(b >> 4)] as char);
        s.push(DIGITS[usize::from(b & 15)] as char);
    }
    s
}

impl UserDb {
    /// An empty database (a users file that does not exist yet).
    pub fn new() -> UserDb {
        UserDb::default()
    }

    /// Reads and checks a users file; refuses one that group or others may
    /// access.
    pub fn load(path: &Path) -> Result<UserDb, UsersError> {
        use std::io::Read as _;
        let file = std::fs::File::open(path).map_err(|e| io_err(path, e))?;
        let meta = file.metadata().map_err(|e| io_err(path, e))?;
        if let Some(mode) = group_other_mode(&meta) {
            return Err(UsersError::Permissions {
                path: path.display().to_string(),
                mode,
            });
        }
        if meta.len() > MAX_FILE_BYTES {
            return Err(UsersError::Parse {
                path: path.display().to_string(),
                message: "larger than 16 MiB".into(),
            });
        }
        let mut text = Zeroizing::new(String::new());
        file.take(MAX_FILE_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| io_err(path, e))?;
        UserDb::parse(&text, path)
    }

    /// Like [`UserDb::load`], but a missing file is an empty database (for
    /// `oxisec user add` on a fresh machine).
    pub fn load_or_new(path: &Path) -> Result<UserDb, UsersError> {
        match std::fs::symlink_metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(UserDb::new()),
            _ => UserDb::load(path),
        }
    }

    /// Parses the file's text; `origin` names it in errors.
    pub fn parse(text: &str, origin: &Path) -> Result<UserDb, UsersError> {
        let path = origin.display().to_string();
        let raw: RawFile = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1);
            UsersError::Parse {
                path: path.clone(),
                message: match line {
                    Some(l) => format!("line {l}: {}", e.message()),
                    None => e.message().to_owned(),
                },
            }
        })?;
        let mut db = UserDb::new();
        for ru in &raw.user {
            check_name(&ru.name)?;
            let hash = parse_hash(&ru.nt_hash).ok_or_else(|| UsersError::BadHash {
                path: path.clone(),
                name: ru.name.clone(),
            })?;
            for g in &ru.groups {
                check_name(g).map_err(|_| UsersError::Parse {
                    path: path.clone(),
                    message: format!("user {:?}: invalid group name {g:?}", ru.name),
                })?;
            }
            db.insert(User {
                name: ru.name.clone(),
                nt_hash: Zeroizing::new(hash),
                groups: ru.groups.clone(),
                disabled: ru.disabled,
            })?;
        }
        Ok(db)
    }

    /// The file's text. Callers holding it should zeroize it (it holds the
    /// hashes); [`UserDb::save`] does.
    pub fn to_toml(&self) -> Zeroizing<String> {
        let raw = RawFile {
            user: self
                .users
                .iter()
                .map(|u| RawUser {
                    name: u.name.clone(),
                    nt_hash: to_hex_upper(u.nt_hash.as_slice()),
                    groups: u.groups.clone(),
                    disabled: u.disabled,
                })
                .collect(),
        };
        let body = Zeroizing::new(toml::to_string(&raw).unwrap_or_default());
        let mut text = Zeroizing::new(String::from(
            "# oxisec EAP users, managed with `oxisec user`. nt_hash is MD4 of the\n\
             # UTF-16LE password (RFC 2759): password-equivalent, keep this file 0600.\n\n",
        ));
        text.push_str(&body);
        text
    }

    /// Writes the database atomically: a private temporary file in the same
    /// directory, fsync, rename over `path`, fsync of the directory. The
    /// file ends up with mode 0600 whatever the umask.
    pub fn save(&self, path: &Path) -> Result<(), UsersError> {
        let text = self.to_toml();
        write_private_atomic(path, text.as_bytes())
    }

    fn position(&self, name: &str) -> Option<usize> {
        if let Some(i) = self.users.iter().position(|u| u.name == name) {
            return Some(i);
        }
        self.users
            .iter()
            .position(|u| u.name.eq_ignore_ascii_case(name))
    }

    /// The user a name from the wire refers to (see the module doc for the
    /// matching rules), disabled or not.
    pub fn find(&self, name: &str) -> Option<&User> {
        if let Some(i) = self.position(name) {
            return Some(&self.users[i]);
        }
        let (_, short) = name.rsplit_once('\\')?;
        self.position(short).map(|i| &self.users[i])
    }

    /// The NT hash EAP-MSCHAPv2 needs for `name`, or `None` if there is no
    /// such user or the user is disabled. Returned in a wrapper that wipes
    /// the copy when the caller drops it.
    pub fn nt_hash(&self, name: &str) -> Option<Zeroizing<[u8; 16]>> {
        self.find(name)
            .filter(|u| !u.disabled)
            .map(|u| u.nt_hash.clone())
    }

    /// The groups of `name` (empty if none or no such user): for per-group
    /// address pools and policies.
    pub fn groups(&self, name: &str) -> &[String] {
        self.find(name).map(|u| u.groups.as_slice()).unwrap_or(&[])
    }

    /// All users in file order.
    pub fn users(&self) -> &[User] {
        &self.users
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    fn insert(&mut self, user: User) -> Result<(), UsersError> {
        if let Some(existing) = self
            .users
            .iter()
            .find(|u| u.name.eq_ignore_ascii_case(&user.name))
        {
            return Err(UsersError::Exists {
                existing: (existing.name != user.name).then(|| existing.name.clone()),
                name: user.name,
            });
        }
        self.users.push(user);
        Ok(())
    }

    /// Adds a user with this password (only its NT hash is kept).
    pub fn add(&mut self, name: &str, password: &str, groups: &[String]) -> Result<(), UsersError> {
        check_name(name)?;
        check_password(password)?;
        for g in groups {
            check_name(g)?;
        }
        let mut gs: Vec<String> = Vec::new();
        for g in groups {
            if !gs.contains(g) {
                gs.push(g.clone());
            }
        }
        self.insert(User {
            name: name.to_owned(),
            nt_hash: nt_password_hash(password),
            groups: gs,
            disabled: false,
        })
    }

    fn get_mut(&mut self, name: &str) -> Result<&mut User, UsersError> {
        match self.position(name) {
            Some(i) => Ok(&mut self.users[i]),
            None => Err(UsersError::NoSuchUser(name.to_owned())),
        }
    }

    /// Sets a new password.
    pub fn set_password(&mut self, name: &str, password: &str) -> Result<(), UsersError> {
        check_password(password)?;
        self.get_mut(name)?.nt_hash = nt_password_hash(password);
        Ok(())
    }

    /// Disables or re-enables a user without forgetting the password.
    pub fn set_disabled(&mut self, name: &str, disabled: bool) -> Result<(), UsersError> {
        self.get_mut(name)?.disabled = disabled;
        Ok(())
    }

    /// Removes a user; returns the removed name as stored.
    pub fn remove(&mut self, name: &str) -> Result<String, UsersError> {
        match self.position(name) {
            Some(i) => Ok(self.users.remove(i).name.clone()),
            None => Err(UsersError::NoSuchUser(name.to_owned())),
        }
    }

    /// The table `oxisec user list` prints: name, groups, state; never
    /// hashes.
    pub fn render_list(&self) -> String {
        let w = self
            .users
            .iter()
            .map(|u| u.name.chars().count())
            .max()
            .unwrap_or(0)
            .max(4);
        let g: Vec<String> = self
            .users
            .iter()
            .map(|u| {
                if u.groups.is_empty() {
                    "-".to_owned()
                } else {
                    u.groups.join(",")
                }
            })
            .collect();
        let wg = g
            .iter()
            .map(|s| s.chars().count())
            .max()
            .unwrap_or(0)
            .max(6);
        let mut out = format!("{:w$}  {:wg$}  STATE\n", "NAME", "GROUPS");
        for (u, g) in self.users.iter().zip(&g) {
            let state = if u.disabled { "disabled" } else { "enabled" };
            out.push_str(&format!("{:w$}  {:wg$}  {state}\n", u.name, g));
        }
        out
    }
}

/// The daemon's EAP server looks users up here: a disabled user is as
/// unknown as a missing one, and names match as [`UserDb::find`] says.
impl oxisec_ike::EapUsers for UserDb {
    fn nt_hash(&self, name: &str) -> Option<oxisec_ike::NtHash> {
        UserDb::nt_hash(self, name).map(|h| oxisec_ike::NtHash::from_bytes(*h))
    }

    /// The user's groups in file order: they pick the user's pool
    /// (`[connections.X.groups.NAME]`).
    fn groups(&self, name: &str) -> Vec<String> {
        UserDb::groups(self, name).to_vec()
    }
}

/// Writes `data` to `path` atomically with mode 0600 (temporary file in the
/// same directory, fsync, rename, fsync of the directory). Also used for
/// generated profiles that hold credentials.
pub fn write_private_atomic(path: &Path, data: &[u8]) -> Result<(), UsersError> {
    write_atomic(path, data, 0o600)
}

/// [`write_private_atomic`] with the given mode.
pub fn write_atomic(path: &Path, data: &[u8], mode: u32) -> Result<(), UsersError> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path
        .file_name()
        .ok_or_else(|| io_err(path, std::io::Error::other("not a file path")))?;
    let mut tmp = None;
    for attempt in 0..16u32 {
        let mut name = std::ffi::OsString::from(".");
        name.push(file_name);
        name.push(format!(".tmp{}.{attempt}", std::process::id()));
        let candidate = dir.join(name);
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(mode);
        }
        match opts.open(&candidate) {
            Ok(f) => {
                tmp = Some((candidate, f));
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_err(&candidate, e)),
        }
    }
    let (tmp_path, mut f) = tmp.ok_or_else(|| {
        io_err(
            path,
            std::io::Error::other("cannot create a temporary file next to it"),
        )
    })?;
    let result = (|| {
        // The umask may have removed bits; set exactly the mode asked for.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(mode))?;
        }
        f.write_all(data)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp_path, path)?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    result.map_err(|e| {
        let _ = std::fs::remove_file(&tmp_path);
        io_err(path, e)
    })
}

// ---------------------------------------------------------------------------
// `oxisec user`
// ---------------------------------------------------------------------------

/// `oxisec user`: manage the EAP-MSCHAPv2 users.
#[derive(Debug, Args, PartialEq)]
pub struct UserArgs {
    /// The users file.
    #[arg(long, value_name = "FILE", default_value = DEFAULT_USERS_FILE, global = true)]
    pub file: PathBuf,
    #[command(subcommand)]
    pub action: UserAction,
}

#[derive(Debug, Subcommand, PartialEq)]
pub enum UserAction {
    /// Add a user; the password is asked for twice (or read from --password-file / stdin).
    Add {
        name: String,
        /// A group the user belongs to (repeatable).
        #[arg(long = "group", value_name = "GROUP")]
        groups: Vec<String>,
        /// Read the password from the first line of this file.
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Set a new password.
    Passwd {
        name: String,
        #[arg(long, value_name = "FILE")]
        password_file: Option<PathBuf>,
    },
    /// Remove a user.
    Remove { name: String },
    /// Stop a user from logging in, keeping the entry.
    Disable { name: String },
    /// Let a disabled user log in again.
    Enable { name: String },
    /// List users, their groups and whether they are disabled (never hashes).
    List,
}

/// Longest password line read (256 characters of up to 4 UTF-8 bytes, a
/// line end, and room to notice a longer line).
const MAX_PASSWORD_LINE: u64 = 4 * MAX_PASSWORD_CHARS as u64 + 8;

/// Reads the first line of `r`, without the line end; never more than
/// [`MAX_PASSWORD_LINE`] bytes, so a wrong file or a pipe that never ends
/// cannot fill memory (an over-long line then fails the length check).
fn read_line(r: &mut dyn BufRead) -> std::io::Result<Zeroizing<String>> {
    use std::io::Read as _;
    let mut line = Zeroizing::new(String::new());
    r.take(MAX_PASSWORD_LINE).read_line(&mut line)?;
    while line.ends_with(['\n', '\r']) {
        line.pop();
    }
    Ok(line)
}

/// The new password: from a file, from the terminal (asked twice, no echo),
/// or one line from a non-terminal stdin.
fn obtain_password(file: Option<&Path>, name: &str) -> Result<Zeroizing<String>, String> {
    if let Some(f) = file {
        let fh = std::fs::File::open(f).map_err(|e| format!("{}: {e}", f.display()))?;
        return read_line(&mut std::io::BufReader::new(fh))
            .map_err(|e| format!("{}: {e}", f.display()));
    }
    if std::io::stdin().is_terminal() {
        let first = Zeroizing::new(
            rpassword::prompt_password(format!("Password for {name}: "))
                .map_err(|e| format!("cannot read the password: {e}"))?,
        );
        let again = Zeroizing::new(
            rpassword::prompt_password("Again: ")
                .map_err(|e| format!("cannot read the password: {e}"))?,
        );
        if *first != *again {
            return Err("the passwords differ".into());
        }
        return Ok(first);
    }
    read_line(&mut std::io::stdin().lock()).map_err(|e| format!("stdin: {e}"))
}

/// Runs `oxisec user …`.
pub fn run(args: UserArgs) -> ExitCode {
    match run_inner(&args) {
        Ok(msg) => {
            let mut o = std::io::stdout().lock();
            let _ = o.write_all(msg.as_bytes()).and_then(|()| o.flush());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("oxisec: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_inner(args: &UserArgs) -> Result<String, String> {
    let path = &args.file;
    let shown = path.display();
    match &args.action {
        UserAction::List => {
            let db = UserDb::load(path).map_err(|e| e.to_string())?;
            Ok(db.render_list())
        }
        UserAction::Add {
            name,
            groups,
            password_file,
        } => {
            let mut db = UserDb::load_or_new(path).map_err(|e| e.to_string())?;
            // Check the name before asking for a password.
            check_name(name).map_err(|e| e.to_string())?;
            if let Some(u) = db.find(name).filter(|u| u.name.eq_ignore_ascii_case(name)) {
                return Err(UsersError::Exists {
                    name: name.clone(),
                    existing: (u.name != *name).then(|| u.name.clone()),
                }
                .to_string());
            }
            let pw = obtain_password(password_file.as_deref(), name)?;
            db.add(name, &pw, groups).map_err(|e| e.to_string())?;
            if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty())
                && !parent.exists()
            {
                let mut b = std::fs::DirBuilder::new();
                b.recursive(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::DirBuilderExt;
                    b.mode(0o700);
                }
                b.create(parent)
                    .map_err(|e| format!("{}: {e}", parent.display()))?;
            }
            db.save(path).map_err(|e| e.to_string())?;
            Ok(format!("added {name} to {shown}\n"))
        }
        UserAction::Passwd {
            name,
            password_file,
        } => {
            let mut db = UserDb::load(path).map_err(|e| e.to_string())?;
            let stored = db
                .find(name)
                .filter(|u| u.name.eq_ignore_ascii_case(name))
                .map(|u| u.name.clone())
                .ok_or_else(|| UsersError::NoSuchUser(name.clone()).to_string())?;
            let pw = obtain_password(password_file.as_deref(), &stored)?;
            db.set_password(&stored, &pw).map_err(|e| e.to_string())?;
            db.save(path).map_err(|e| e.to_string())?;
            Ok(format!("password of {stored} changed\n"))
        }
        UserAction::Remove { name } => {
            let mut db = UserDb::load(path).map_err(|e| e.to_string())?;
            let removed = db.remove(name).map_err(|e| e.to_string())?;
            db.save(path).map_err(|e| e.to_string())?;
            Ok(format!("removed {removed} from {shown}\n"))
        }
        UserAction::Disable { name } | UserAction::Enable { name } => {
            let disable = matches!(args.action, UserAction::Disable { .. });
            let mut db = UserDb::load(path).map_err(|e| e.to_string())?;
            db.set_disabled(name, disable).map_err(|e| e.to_string())?;
            db.save(path).map_err(|e| e.to_string())?;
            Ok(format!(
                "{name} {}\n",
                if disable { "disabled" } else { "enabled" }
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tmpdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("oxisec-users-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn nt_hash_rfc2759_vector() {
        // RFC 2759 §9.2: Password "clientPass" → PasswordHash.
        assert_eq!(
            to_hex_upper(nt_password_hash("clientPass").as_slice()),
            "44EBBA8D5312B8D611474411F56989AE"
        );
        // Non-ASCII goes through UTF-16LE: "é" is E9 00.
        let mut md = Md4::new();
        md.update([0xe9, 0x00]);
        assert_eq!(nt_password_hash("é").as_slice(), md.finalize().as_slice());
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("alice").is_ok());
        assert!(check_name("Ålice Ünicode@corp.example").is_ok());
        assert!(check_name(&"a".repeat(64)).is_ok());
        for bad in ["", "a\"b", "a\nb", "a\u{7f}", " alice", "alice\t"] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
        assert!(check_name(&"é".repeat(65)).is_err());
        assert!(check_password("").is_err());
        assert!(check_password(&"x".repeat(257)).is_err());
        assert!(check_password("a\nb").is_err());
        assert!(check_password(&"ü".repeat(256)).is_ok());
    }

    #[test]
    fn lookup_rules() {
        let mut db = UserDb::new();
        db.add("Alice", "clientPass", &["staff".into(), "staff".into()])
            .unwrap();
        db.add("bob", "secret", &[]).unwrap();
        let expect = nt_password_hash("clientPass");
        assert_eq!(*db.nt_hash("Alice").unwrap(), *expect);
        assert_eq!(*db.nt_hash("alice").unwrap(), *expect);
        assert_eq!(*db.nt_hash("CORP\\alice").unwrap(), *expect);
        assert!(db.nt_hash("carol").is_none());
        assert_eq!(db.groups("ALICE"), ["staff".to_string()]);
        assert!(db.groups("bob").is_empty());
        assert!(db.groups("nobody").is_empty());
        // What the engine's EAP server asks (for the pool of the user's group).
        let users: &dyn oxisec_ike::EapUsers = &db;
        assert_eq!(users.groups("CORP\\alice"), ["staff"]);
        // Case-only duplicates are refused.
        let e = db.add("ALICE", "x", &[]).unwrap_err();
        assert!(matches!(e, UsersError::Exists { existing: Some(ref n), .. } if n == "Alice"));
        db.set_disabled("bob", true).unwrap();
        assert!(db.nt_hash("bob").is_none());
        assert!(db.find("bob").unwrap().disabled());
        db.set_password("alice", "new").unwrap();
        assert_eq!(*db.nt_hash("alice").unwrap(), *nt_password_hash("new"));
        assert_eq!(db.remove("BOB").unwrap(), "bob");
        assert!(matches!(db.remove("bob"), Err(UsersError::NoSuchUser(_))));
    }

    #[test]
    fn debug_and_list_never_show_hashes() {
        let mut db = UserDb::new();
        db.add("alice", "clientPass", &["staff".into()]).unwrap();
        db.add("bob", "x", &[]).unwrap();
        db.set_disabled("bob", true).unwrap();
        let dbg = format!("{db:?}");
        let list = db.render_list();
        for s in [&dbg, &list] {
            assert!(!s.to_uppercase().contains("44EBBA8D"), "{s}");
            assert!(!s.contains("68, 235"), "{s}"); // decimal bytes
        }
        assert!(list.contains("alice") && list.contains("staff") && list.contains("enabled"));
        assert!(
            list.lines()
                .any(|l| l.starts_with("bob") && l.ends_with("disabled"))
        );
    }

    #[test]
    fn save_load_round_trip_and_mode() {
        let d = tmpdir("rt");
        let p = d.join("users.toml");
        let mut db = UserDb::new();
        db.add("alice", "clientPass", &["staff".into(), "vpn".into()])
            .unwrap();
        db.add("O'Brien & Ünïcode\\x", "pw", &[]).unwrap();
        db.set_disabled("O'Brien & Ünïcode\\x", true).unwrap();
        db.save(&p).unwrap();
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(text.contains("nt_hash = \"44EBBA8D5312B8D611474411F56989AE\""));
        assert!(!text.contains("clientPass"));
        let back = UserDb::load(&p).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(
            *back.nt_hash("alice").unwrap(),
            *nt_password_hash("clientPass")
        );
        assert_eq!(back.groups("alice"), ["staff", "vpn"]);
        assert!(back.find("O'Brien & Ünïcode\\x").unwrap().disabled());
        // Rewriting replaces the file, no temporary left behind.
        back.save(&p).unwrap();
        let left: Vec<_> = std::fs::read_dir(&d).unwrap().collect();
        assert_eq!(left.len(), 1);
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn refuses_readable_file() {
        let d = tmpdir("perm");
        let p = d.join("users.toml");
        UserDb::new().save(&p).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
        let e = UserDb::load(&p).unwrap_err();
        assert!(
            matches!(e, UsersError::Permissions { mode: 0o640, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("chmod 600"));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(UserDb::load(&p).unwrap().is_empty());
        assert!(
            UserDb::load_or_new(&d.join("none.toml"))
                .unwrap()
                .is_empty()
        );
        std::fs::remove_dir_all(&d).unwrap();
    }

    #[test]
    fn rejects_bad_files() {
        let p = Path::new("users.toml");
        let cases = [
            ("[[user]]\nname = \"a\"\n", "missing field"),
            (
                "[[user]]\nname = \"a\"\nnt_hash = \"44EB\"\n",
                "32 hexadecimal",
            ),
            (
                "[[user]]\nname = \"a\"\nnt_hash = \"ZZEBBA8D5312B8D611474411F56989AE\"\n",
                "32 hexadecimal",
            ),
            (
                "[[user]]\nname = \"a\"\nnt_hash = \"44EBBA8D5312B8D611474411F56989AE\"\npassword = \"x\"\n",
                "unknown field",
            ),
            (
                "[[user]]\nname = \"\"\nnt_hash = \"44EBBA8D5312B8D611474411F56989AE\"\n",
                "empty",
            ),
            (
                "[[user]]\nname = \"a\"\nnt_hash = \"44EBBA8D5312B8D611474411F56989AE\"\n[[user]]\nname = \"A\"\nnt_hash = \"44EBBA8D5312B8D611474411F56989AE\"\n",
                "already exists",
            ),
            (
                "[[user]]\nname = \"a\"\nnt_hash = \"44EBBA8D5312B8D611474411F56989AE\"\ngroups = [\"x\\ny\"]\n",
                "invalid group",
            ),
            ("user = 3", "invalid type"),
        ];
        for (text, want) in cases {
            let e = UserDb::parse(text, p).unwrap_err().to_string();
            assert!(e.contains(want), "{text:?}: {e}");
        }
        // Lower-case hex is accepted.
        let db = UserDb::parse(
            "[[user]]\nname = \"a\"\nnt_hash = \"44ebba8d5312b8d611474411f56989ae\"\n",
            p,
        )
        .unwrap();
        assert_eq!(*db.nt_hash("a").unwrap(), *nt_password_hash("clientPass"));
    }

    #[test]
    fn cli_add_passwd_remove() {
        let d = tmpdir("cli");
        let file = d.join("sub/users.toml");
        let pwf = d.join("pw");
        std::fs::write(&pwf, "clientPass\r\n").unwrap();
        let args = |action| UserArgs {
            file: file.clone(),
            action,
        };
        run_inner(&args(UserAction::Add {
            name: "alice".into(),
            groups: vec!["staff".into()],
            password_file: Some(pwf.clone()),
        }))
        .unwrap();
        let db = UserDb::load(&file).unwrap();
        assert_eq!(
            *db.nt_hash("alice").unwrap(),
            *nt_password_hash("clientPass")
        );
        let dir_mode = std::fs::metadata(d.join("sub"))
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700);
        let e = run_inner(&args(UserAction::Add {
            name: "ALICE".into(),
            groups: vec![],
            password_file: Some(pwf.clone()),
        }))
        .unwrap_err();
        assert!(e.contains("already exists"), "{e}");
        std::fs::write(&pwf, "other\n").unwrap();
        run_inner(&args(UserAction::Passwd {
            name: "Alice".into(),
            password_file: Some(pwf.clone()),
        }))
        .unwrap();
        assert_eq!(
            *UserDb::load(&file).unwrap().nt_hash("alice").unwrap(),
            *nt_password_hash("other")
        );
        run_inner(&args(UserAction::Disable {
            name: "alice".into(),
        }))
        .unwrap();
        let list = run_inner(&args(UserAction::List)).unwrap();
        assert!(list.contains("disabled"), "{list}");
        run_inner(&args(UserAction::Remove {
            name: "alice".into(),
        }))
        .unwrap();
        assert!(UserDb::load(&file).unwrap().is_empty());
        assert!(run_inner(&args(UserAction::Remove { name: "x".into() })).is_err());
        // A password file that is not one: read up to a bound, then refused.
        std::fs::write(&pwf, "a".repeat(1 << 20)).unwrap();
        let e = run_inner(&args(UserAction::Add {
            name: "bob".into(),
            groups: vec![],
            password_file: Some(pwf.clone()),
        }))
        .unwrap_err();
        assert!(e.contains("longer than 256"), "{e}");
        std::fs::remove_dir_all(&d).unwrap();
    }
}
