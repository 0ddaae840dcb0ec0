//! The recording semantics of docs/recording.md as a pure state machine: from
//! the file-system events the monitor saw (plus before-state digests) to the
//! step's materials and products.
//!
//! This module knows paths, file identities ([`Node`]) and opaque digests
//! (any `D: Clone + Eq`). It knows nothing of FUSE, of hashing algorithms or
//! of in-toto: the caller feeds [`Event`]s to a [`Tracker`] in the order the
//! requests were answered, gives it before-state digests when it asks for
//! them ([`Tracker::needs_before_state`], [`Tracker::set_before`]), and at the
//! end calls [`Tracker::finish`] with a function that digests final content.
//! Exclude patterns are the caller's business: filter the [`Outcome`] maps.
//!
//! # Model
//!
//! The tracker keeps the part of the tree the command touched: a map from
//! current path to what is there (a regular file — a node —, a symlink, a
//! directory or something else), and for each name whether it is still the
//! *original* binding (the name existed when the run started and the tree has
//! not moved, replaced or removed it) or was *placed* during the run (created,
//! renamed or linked onto, or moved along with a renamed directory). Regular
//! files are nodes, keyed by (device, inode), so hard links are one file.
//!
//! Effects are of two sorts:
//! - on a node (content): read-open, write-open, truncation, hard-linking.
//!   They apply to every name of the node the tree used: a material for each
//!   original name of the node the tree saw, a product for each name it has at
//!   the end (when the effect makes one).
//! - on a name: unlink, rename away, being replaced by a rename, and being
//!   placed. They apply to that name only.
//!
//! # The rules (docs/recording.md)
//!
//! An original name `p` of a regular file is a **material**, with the digest
//! of the node's content before the tree changed it, if the node was
//! read-opened (or executed, or mapped), truncated, write-opened and its
//! final content differs from the before-state, or hard-linked to a new name;
//! or if the name `p` itself was unlinked, renamed away (directly or with a
//! directory above it) or replaced by a rename.
//!
//! A name that exists at the end and holds a regular file is a **product**,
//! with the digest of the final content, if the name was placed during the
//! run (created, renamed onto, linked onto, moved with a directory), the node
//! was created during the run, the node was truncated (even when the same
//! bytes were written again), or it was write-opened and its final content
//! differs from the before-state.
//!
//! A write-open that leaves the content as it was (`touch`, an append of
//! nothing) makes neither; an `O_RDWR` open that changes nothing makes a
//! material only (it is a read).
//!
//! Symlinks under R that resolve to a regular file under R are artifacts
//! under their own name, with the target's digest. Only their names count:
//! an original symlink that is unlinked, renamed away or replaced is a
//! material (digest: the before-state of the file it pointed to when it was
//! first seen); a symlink placed during the run (created or renamed) is a
//! product (digest: whatever it resolves to at the end, computed by the
//! caller). Writing to or reading from the target is recorded on the target
//! file, not on the symlink (the monitor sees the target's own requests).
//! Retargeting (`ln -sf`) is an unlink plus a creation: material and product.
//! Symlinks to directories, outside R, or dangling are not artifacts
//! ([`Note::NonArtifactSymlink`]).
//!
//! # Decisions where the rules leave room
//!
//! - **Rename back** (`mv a t; mv t a`): the original name `a` was renamed
//!   away (material, before-state) and something was renamed onto `a`
//!   (product, final digest). Both are recorded, usually with equal digests,
//!   just as a truncation that rewrites the same bytes is a product.
//! - **Rename chains** (`a -> b -> c`): material `a`, product `c`; `b` is
//!   neither unless it existed before (then it was replaced: material `b`).
//!   A file created during the run and renamed is a product only.
//! - **Hard links and reads**: a read is a content effect, so it makes a
//!   material of every original name of the node the tree saw, not only of
//!   the name the monitor reports (an `OPEN` is on an inode, not a name).
//! - **`ln a b`**: material `a` (rule "hard-linked it to a new name"),
//!   product `b`; `a` is not a product (its content did not change).
//! - **Unlink then create** of the same name: material (old file), product
//!   (new file): the name was placed.
//! - **Rename onto a hard link of the same file** does nothing (rename(2)).
//! - **Symlink targets** are changed by the tree only through the target's
//!   own name: a pre-existing symlink whose target file is rewritten is
//!   neither a material nor a product itself (the target is both).
//! - **`truncate` to the current size** counts as a truncation (product).
//! - **Missing before-state** of a material is an error note
//!   ([`Note::MissingBeforeState`]), never a guess, with one exception: a
//!   file the tree never opened for writing nor truncated still has its
//!   before-state content at the end, so its final digest is used.
//!
//! # Contract with the monitor
//!
//! - Every pre-existing name an event refers to is announced first: by
//!   [`Event::Found`] at its first `LOOKUP`, or in the `moved` list of a
//!   directory rename (the monitor walks the real directory, so entries never
//!   looked up are known too). Names created by events need no announcement.
//!   Violations are [`Note::Anomaly`] (an error: the run is incomplete); the
//!   tracker still does its best.
//! - Before answering a write-mode `OPEN` or a `SETATTR(size)` of node `n`,
//!   and when unlinking or renaming over a name of `n` (keeping the old inode
//!   open), the monitor checks [`Tracker::needs_before_state`] and, if true,
//!   hashes `n` and calls [`Tracker::set_before`]. For a write-open or
//!   truncation the digest is taken before the request is answered (so
//!   before the event is applied); for unlink/rename-over it may arrive later
//!   but must come before the kept inode is released (an inode number can be
//!   reused by a later `CREATE`). Read-opens may be hashed in the background.
//! - Events are applied in the order the requests were answered.
//! - `RENAME_EXCHANGE` is not modelled: the monitor should translate it into
//!   two renames through a temporary name or refuse it.

use std::collections::{BTreeMap, BTreeSet, HashMap};

/// A file's identity: (device, inode) of the backing file. Hard links share
/// a node.
pub type Node = (u64, u64);

/// The process that made a request (kept for the trace; the semantics do not
/// depend on it).
pub type Pid = u32;

/// What a directory entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A regular file.
    File,
    /// A symbolic link.
    Symlink,
    /// A directory.
    Dir,
    /// Anything else (fifo, socket, device): never an artifact.
    Other,
}

/// A pre-existing directory entry, as the monitor found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Path relative to R.
    pub path: String,
    /// The backing (device, inode). For a symlink, the symlink's own inode.
    pub node: Node,
    /// What it is.
    pub kind: Kind,
    /// `st_nlink` when it was found (regular files); 0 if unknown. Used only
    /// to report hard links the tree never saw ([`Note::UnseenHardLinks`]).
    pub nlink: u64,
    /// For a symlink: the regular file under R it resolves to, as (path under
    /// R, node), when it was found; `None` if it resolves to a directory, to
    /// something outside R, or dangles (then it is not an artifact).
    pub symlink_target: Option<(String, Node)>,
}

impl Entry {
    /// A regular file with one link.
    pub fn file(path: impl Into<String>, node: Node) -> Self {
        Entry {
            path: path.into(),
            node,
            kind: Kind::File,
            nlink: 1,
            symlink_target: None,
        }
    }

    /// A directory.
    pub fn dir(path: impl Into<String>, node: Node) -> Self {
        Entry {
            path: path.into(),
            node,
            kind: Kind::Dir,
            nlink: 0,
            symlink_target: None,
        }
    }

    /// A symlink resolving to `target` (see [`Entry::symlink_target`]).
    pub fn symlink(path: impl Into<String>, node: Node, target: Option<(&str, Node)>) -> Self {
        Entry {
            path: path.into(),
            node,
            kind: Kind::Symlink,
            nlink: 0,
            symlink_target: target.map(|(p, n)| (p.to_string(), n)),
        }
    }
}

/// One request of the monitored tree, as far as the semantics care.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A pre-existing entry was found (first `LOOKUP` of that name).
    Found(Entry),
    /// `OPEN` (or exec, or a mapping through an open) of an existing regular
    /// file. `path` is a name of `node` (informational: the effects are on the
    /// node). Reads through a symlink arrive as the target's own open.
    Open {
        path: String,
        node: Node,
        read: bool,
        write: bool,
        truncate: bool,
        pid: Pid,
    },
    /// `CREATE`/`MKNOD` of a new regular file at `path` (an `O_CREAT` that
    /// created it; on an existing file the monitor sends [`Event::Open`]).
    Create { path: String, node: Node, pid: Pid },
    /// `truncate(2)`/`ftruncate(2)`: `SETATTR` with a size.
    Truncate { node: Node, pid: Pid },
    /// `unlink(2)` of a file or symlink.
    Unlink { path: String, pid: Pid },
    /// `rename(2)`. `replaced` is the node the destination name held before,
    /// if any (a cross-check: the tracker normally knows it already). For a
    /// directory, every path below `from` moves below `to`; `moved` lists the
    /// entries below `from` at that moment (old paths), so pre-existing
    /// entries never looked up are known too.
    Rename {
        from: String,
        to: String,
        replaced: Option<Node>,
        moved: Vec<Entry>,
        pid: Pid,
    },
    /// `link(2)`: `to` becomes a new name of `node`, found at `from`.
    Link {
        from: String,
        to: String,
        node: Node,
        pid: Pid,
    },
    /// `symlink(2)` created at `path`. `resolved_target` (as in
    /// [`Entry::symlink_target`], path only) is informational: a symlink
    /// placed during the run is resolved by the caller at the end.
    Symlink {
        path: String,
        resolved_target: Option<String>,
        pid: Pid,
    },
    /// `mkdir(2)`.
    Mkdir { path: String, pid: Pid },
    /// `rmdir(2)`.
    Rmdir { path: String, pid: Pid },
}

/// Something the runtime trace should report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Note {
    /// A file created during the run and gone at the end (neither material
    /// nor product). `path` is the name it was created under.
    Transient { path: String },
    /// A pre-existing file whose content the tree changed has more hard links
    /// than the names the tree saw: the other names changed too, unrecorded.
    UnseenHardLinks { paths: Vec<String>, nlink: u64 },
    /// A file moved along with a renamed directory and changed afterwards;
    /// its materials (`before`, original names) carry the content from before
    /// the run, its products (`after`, final names) the final content.
    ChangedAfterDirRename {
        before: Vec<String>,
        after: Vec<String>,
    },
    /// A symlink created, removed or moved that does not resolve to a regular
    /// file under R: not an artifact.
    NonArtifactSymlink { path: String },
    /// A material whose before-state digest is unknown (error: the run is
    /// incomplete). It is missing from [`Outcome::materials`].
    MissingBeforeState { path: String },
    /// A product whose final digest could not be computed (error). It is
    /// missing from [`Outcome::products`].
    MissingFinalDigest { path: String },
    /// The event stream disagrees with what the tracker knows (error): a
    /// monitor bug or an unannounced name. The tracker did its best.
    Anomaly { message: String },
}

impl Note {
    /// Whether this note makes the run incomplete.
    pub fn is_error(&self) -> bool {
        matches!(
            self,
            Note::MissingBeforeState { .. }
                | Note::MissingFinalDigest { .. }
                | Note::Anomaly { .. }
        )
    }
}

/// The result of a run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<D> {
    /// Original path -> before-state digest.
    pub materials: BTreeMap<String, D>,
    /// Final path -> final digest.
    pub products: BTreeMap<String, D>,
    /// What the trace should report; see [`Note::is_error`].
    pub notes: Vec<Note>,
}

/// What a name holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum What {
    /// A regular file: index into `Tracker::nodes`.
    File(usize),
    Symlink,
    Dir,
    Other,
}

#[derive(Debug, Clone, Copy)]
struct Binding {
    what: What,
    /// The name existed at the start and the tree has not moved, replaced or
    /// removed it. Otherwise it was placed during the run.
    original: bool,
}

/// What an original symlink pointed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SymTarget {
    /// A directory, outside R, or dangling.
    NotArtifact,
    File(usize),
    /// Could not be told (its target path had changed before it was seen).
    Unknown,
}

#[derive(Debug, Clone, Copy)]
enum OrigWhat {
    File(usize),
    Symlink(SymTarget),
}

/// A name that existed at the start (files and symlinks only).
#[derive(Debug, Clone, Copy)]
struct Original {
    what: OrigWhat,
    /// Unlinked, renamed away or replaced.
    gone: bool,
}

/// A regular file, by identity. A new one is made for every created file,
/// so an inode number reused during the run is a new node.
#[derive(Debug, Clone)]
struct NodeState<D> {
    node: Node,
    pre_existing: bool,
    before: Option<D>,
    read: bool,
    write_opened: bool,
    truncated: bool,
    linked: bool,
    moved_by_dir: bool,
    changed_after_dir_move: bool,
    /// Current names the tracker knows.
    names: BTreeSet<String>,
    /// Whether the tracker ever knew a name of it.
    named: bool,
    /// The name it was created under (files created during the run).
    created_as: Option<String>,
    /// Link count at the start, when known.
    orig_nlink: Option<u64>,
    /// Links added minus links removed by the tree so far.
    link_delta: i64,
    /// A path where it can be found, if the tree never touched that name
    /// (targets of symlinks whose own name was never looked up).
    hint: Option<String>,
}

impl<D> NodeState<D> {
    fn new(node: Node, pre_existing: bool) -> Self {
        NodeState {
            node,
            pre_existing,
            before: None,
            read: false,
            write_opened: false,
            truncated: false,
            linked: false,
            moved_by_dir: false,
            changed_after_dir_move: false,
            names: BTreeSet::new(),
            named: false,
            created_as: None,
            orig_nlink: None,
            link_delta: 0,
            hint: None,
        }
    }
}

/// One final digest the tracker will ask for: `(path, Some(node))` is the
/// regular file `node`, found at `path`; `(path, None)` is the symlink at
/// `path`, to be resolved within R (`None` as the answer if it does not
/// resolve to a regular file under R).
pub type FinalQuery = (String, Option<Node>);

/// The state machine: apply events in order, then [`Tracker::finish`].
#[derive(Debug, Clone)]
pub struct Tracker<D> {
    nodes: Vec<NodeState<D>>,
    /// Node -> its current state (the latest one, if the inode was reused).
    live: HashMap<Node, usize>,
    /// Current path -> what the tracker knows is there.
    names: BTreeMap<String, Binding>,
    /// Original path -> what was there at the start.
    originals: BTreeMap<String, Original>,
    /// Anomalies, in event order.
    notes: Vec<Note>,
}

impl<D: Clone + Eq> Default for Tracker<D> {
    fn default() -> Self {
        Self::new()
    }
}

impl<D: Clone + Eq> Tracker<D> {
    /// An empty tracker for a run that is about to start.
    pub fn new() -> Self {
        Tracker {
            nodes: Vec::new(),
            live: HashMap::new(),
            names: BTreeMap::new(),
            originals: BTreeMap::new(),
            notes: Vec::new(),
        }
    }

    /// Whether the monitor must hash `node` now to keep its before-state: it
    /// existed before the run, its before-state is not recorded, and the tree
    /// has not yet opened it for writing or truncated it (after that, its
    /// content may no longer be the before-state, so hashing it would record
    /// a wrong one: the material is reported missing instead). A node the
    /// tracker does not know is assumed pre-existing (`true`).
    pub fn needs_before_state(&self, node: Node) -> bool {
        match self.live.get(&node) {
            Some(&id) => {
                let n = &self.nodes[id];
                n.pre_existing && n.before.is_none() && !n.write_opened && !n.truncated
            }
            None => true,
        }
    }

    /// Records the before-state digest of `node` (the first one given wins;
    /// digests of files created during the run are ignored). See the module
    /// docs for when it may be called.
    pub fn set_before(&mut self, node: Node, digest: D) {
        let id = match self.live.get(&node) {
            Some(&id) => id,
            None => self.new_node(node, true),
        };
        let n = &mut self.nodes[id];
        if n.pre_existing && n.before.is_none() {
            n.before = Some(digest);
        }
    }

    /// Applies one event.
    pub fn apply(&mut self, ev: &Event) {
        match ev {
            Event::Found(e) => self.announce(e),
            Event::Open {
                path,
                node,
                read,
                write,
                truncate,
                ..
            } => {
                let id = self.node_for(path, *node, "open");
                let n = &mut self.nodes[id];
                n.read |= *read;
                if *write || *truncate {
                    n.write_opened |= *write;
                    n.truncated |= *truncate;
                    n.changed_after_dir_move |= n.moved_by_dir;
                }
            }
            Event::Create { path, node, .. } => self.create(path, *node),
            Event::Truncate { node, .. } => {
                let id = match self.live.get(node) {
                    Some(&id) => id,
                    None => {
                        self.anomaly(format!("truncation of an unknown file {node:?}"));
                        self.new_node(*node, true)
                    }
                };
                let n = &mut self.nodes[id];
                n.truncated = true;
                n.changed_after_dir_move |= n.moved_by_dir;
            }
            Event::Unlink { path, .. } => match self.names.get(path).map(|b| b.what) {
                None => self.anomaly(format!("unlink of {path}, which was never announced")),
                Some(what) => {
                    if what == What::Dir {
                        self.anomaly(format!("unlink of the directory {path}"));
                    }
                    self.remove(path);
                }
            },
            Event::Rename {
                from,
                to,
                replaced,
                moved,
                ..
            } => self.rename(from, to, *replaced, moved),
            Event::Link { from, to, node, .. } => {
                let id = self.node_for(from, *node, "link");
                if self.names.contains_key(to) {
                    self.anomaly(format!("link onto {to}, which exists"));
                    self.remove(to);
                }
                let n = &mut self.nodes[id];
                n.linked = true;
                n.link_delta += 1;
                n.names.insert(to.clone());
                n.named = true;
                self.place(to, What::File(id));
            }
            Event::Symlink { path, .. } => {
                if self.names.contains_key(path) {
                    self.anomaly(format!("symlink created at {path}, which exists"));
                    self.remove(path);
                }
                self.place(path, What::Symlink);
            }
            Event::Mkdir { path, .. } => {
                if self.names.contains_key(path) {
                    self.anomaly(format!("directory created at {path}, which exists"));
                    self.remove(path);
                }
                self.place(path, What::Dir);
            }
            Event::Rmdir { path, .. } => match self.names.get(path).map(|b| b.what) {
                None => self.anomaly(format!("rmdir of {path}, which was never announced")),
                Some(what) => {
                    if what != What::Dir {
                        self.anomaly(format!("rmdir of {path}, which is not a directory"));
                    }
                    self.remove(path);
                }
            },
        }
    }

    /// The final digests [`Tracker::finish`] will ask for, each once, so the
    /// caller can compute them in parallel beforehand.
    pub fn final_queries(&self) -> Vec<FinalQuery> {
        let mut queries = Vec::new();
        self.compute(&mut |path: &str, node: Option<Node>| {
            queries.push((path.to_string(), node));
            None
        });
        queries
    }

    /// Materials, products and notes. `final_digest(path, node)` answers a
    /// [`FinalQuery`]: the digest of the regular file `node` (at `path`), or
    /// for `node == None` of the regular file under R the symlink at `path`
    /// resolves to (`None` if there is none). It is called at most once per
    /// query, only for the queries [`Tracker::final_queries`] lists.
    pub fn finish(
        self,
        mut final_digest: impl FnMut(&str, Option<Node>) -> Option<D>,
    ) -> Outcome<D> {
        self.compute(&mut final_digest)
    }

    // ----- events -----

    fn anomaly(&mut self, message: String) {
        self.notes.push(Note::Anomaly { message });
    }

    fn new_node(&mut self, node: Node, pre_existing: bool) -> usize {
        let id = self.nodes.len();
        self.nodes.push(NodeState::new(node, pre_existing));
        self.live.insert(node, id);
        id
    }

    /// The state of a node found under a pre-existing name.
    fn pre_existing_node(&mut self, node: Node) -> usize {
        match self.live.get(&node) {
            Some(&id) => {
                if !self.nodes[id].pre_existing {
                    self.anomaly(format!(
                        "{node:?} was created during the run but is announced as pre-existing"
                    ));
                }
                id
            }
            None => self.new_node(node, true),
        }
    }

    /// The node an open or link refers to. One whose name was never
    /// announced is announced implicitly at `path` (an anomaly). `path` is
    /// not checked further: an `OPEN` is on an inode, and the monitor may
    /// report a stale name (a reopen through /proc of an unlinked file).
    fn node_for(&mut self, path: &str, node: Node, what: &str) -> usize {
        if let Some(&id) = self.live.get(&node)
            && self.nodes[id].named
        {
            return id;
        }
        self.anomaly(format!("{what} of {path}, which was never announced"));
        if self.names.contains_key(path) {
            self.pre_existing_node(node)
        } else {
            self.announce(&Entry::file(path, node));
            self.live[&node]
        }
    }

    /// Whether no directory above `path` was created or moved during the run
    /// (then an entry found there now is where it was at the start).
    fn ancestors_original(&self, path: &str) -> bool {
        path.match_indices('/')
            .all(|(i, _)| self.names.get(&path[..i]).is_none_or(|b| b.original))
    }

    /// Known paths strictly below `path`.
    fn keys_below(&self, path: &str) -> Vec<String> {
        let prefix = format!("{path}/");
        self.names
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// A pre-existing entry (`Found`, or an entry of a renamed directory).
    fn announce(&mut self, e: &Entry) {
        if let Some(b) = self.names.get(&e.path).copied() {
            let consistent = match (b.what, e.kind) {
                (What::File(id), Kind::File) => self.live.get(&e.node) == Some(&id),
                (What::Symlink, Kind::Symlink)
                | (What::Dir, Kind::Dir)
                | (What::Other, Kind::Other) => true,
                _ => false,
            };
            if !consistent {
                self.anomaly(format!(
                    "{} announced as {:?} {:?}, but the tracker has {:?} there",
                    e.path, e.kind, e.node, b.what
                ));
            }
            return;
        }
        let original = self.ancestors_original(&e.path) && !self.originals.contains_key(&e.path);
        if !original {
            self.anomaly(format!(
                "{} announced as pre-existing, but its name or a directory above it was placed during the run",
                e.path
            ));
        }
        let what = match e.kind {
            Kind::File => {
                let id = self.pre_existing_node(e.node);
                let n = &mut self.nodes[id];
                n.names.insert(e.path.clone());
                n.named = true;
                if n.orig_nlink.is_none() && e.nlink > 0 {
                    n.orig_nlink = Some(u64::try_from(e.nlink as i64 - n.link_delta).unwrap_or(0));
                }
                if original {
                    self.originals.insert(
                        e.path.clone(),
                        Original {
                            what: OrigWhat::File(id),
                            gone: false,
                        },
                    );
                }
                What::File(id)
            }
            Kind::Symlink => {
                if original {
                    let target = self.symlink_target(&e.symlink_target);
                    self.originals.insert(
                        e.path.clone(),
                        Original {
                            what: OrigWhat::Symlink(target),
                            gone: false,
                        },
                    );
                }
                What::Symlink
            }
            Kind::Dir => What::Dir,
            Kind::Other => What::Other,
        };
        self.names
            .insert(e.path.clone(), Binding { what, original });
    }

    /// What an original symlink pointed to at the start, from what it
    /// resolves to now.
    fn symlink_target(&mut self, target: &Option<(String, Node)>) -> SymTarget {
        let Some((path, node)) = target else {
            return SymTarget::NotArtifact;
        };
        if let Some(o) = self.originals.get(path) {
            return match o.what {
                OrigWhat::File(id) => {
                    let still_there = self.names.get(path).is_some_and(|b| b.original);
                    if still_there && self.nodes[id].node != *node {
                        self.anomaly(format!("symlink target {path} resolved to another file"));
                    }
                    SymTarget::File(id)
                }
                OrigWhat::Symlink(_) => SymTarget::Unknown,
            };
        }
        if self.names.contains_key(path) || !self.ancestors_original(path) {
            // The target's name was placed during the run: what the symlink
            // pointed to at the start is unknown.
            return SymTarget::Unknown;
        }
        let id = self.pre_existing_node(*node);
        let n = &mut self.nodes[id];
        if n.hint.is_none() {
            n.hint = Some(path.clone());
        }
        SymTarget::File(id)
    }

    /// Binds a name placed during the run.
    fn place(&mut self, path: &str, what: What) {
        self.names.insert(
            path.to_string(),
            Binding {
                what,
                original: false,
            },
        );
    }

    fn create(&mut self, path: &str, node: Node) {
        if self.names.contains_key(path) {
            self.anomaly(format!("creation of {path}, which exists"));
            self.remove(path);
        }
        if let Some(&old) = self.live.get(&node)
            && !self.nodes[old].names.is_empty()
        {
            self.anomaly(format!(
                "{path} created with {node:?}, which still has names"
            ));
        }
        let id = self.new_node(node, false);
        let n = &mut self.nodes[id];
        n.created_as = Some(path.to_string());
        n.names.insert(path.to_string());
        n.named = true;
        self.place(path, What::File(id));
    }

    /// Removes one name (no subtree).
    fn remove_one(&mut self, path: &str) {
        let Some(b) = self.names.remove(path) else {
            return;
        };
        if b.original
            && let Some(o) = self.originals.get_mut(path)
        {
            o.gone = true;
        }
        if let What::File(id) = b.what {
            let n = &mut self.nodes[id];
            n.names.remove(path);
            n.link_delta -= 1;
        }
    }

    /// Removes a name and, for a directory, whatever is still known below it
    /// (an anomaly: a directory must be empty to be removed or replaced).
    fn remove(&mut self, path: &str) {
        let below = self.keys_below(path);
        if !below.is_empty() {
            self.anomaly(format!(
                "{path} removed while {} entries below it were still known; they count as deleted",
                below.len()
            ));
        }
        for k in below {
            self.remove_one(&k);
        }
        self.remove_one(path);
    }

    /// Moves one name (no subtree).
    fn move_one(&mut self, old: &str, new: &str, by_dir: bool) {
        let Some(b) = self.names.remove(old) else {
            return;
        };
        if b.original
            && let Some(o) = self.originals.get_mut(old)
        {
            o.gone = true;
        }
        if let What::File(id) = b.what {
            let n = &mut self.nodes[id];
            n.names.remove(old);
            n.names.insert(new.to_string());
            n.moved_by_dir |= by_dir;
        }
        self.place(new, b.what);
    }

    fn rename(&mut self, from: &str, to: &str, replaced: Option<Node>, moved: &[Entry]) {
        if from == to {
            return;
        }
        let prefix = format!("{from}/");
        if to.starts_with(&prefix) {
            self.anomaly(format!("rename of {from} below itself ({to})"));
            return;
        }
        // Entries of a renamed directory that were never looked up.
        for e in moved {
            if !e.path.starts_with(&prefix) {
                self.anomaly(format!(
                    "rename of {from} lists {}, which is not below it",
                    e.path
                ));
            } else if !self.names.contains_key(&e.path) {
                self.announce(e);
            }
        }
        let src = match self.names.get(from) {
            Some(b) => b.what,
            None => {
                self.anomaly(format!("rename of {from}, which was never announced"));
                let what = if moved.is_empty() {
                    What::Other
                } else {
                    What::Dir
                };
                let original = self.ancestors_original(from);
                self.names
                    .insert(from.to_string(), Binding { what, original });
                what
            }
        };
        // rename(2) of two names of one file does nothing.
        if let (What::File(a), Some(b)) = (src, self.names.get(to))
            && b.what == What::File(a)
        {
            return;
        }
        // The destination is replaced.
        match (self.names.contains_key(to), replaced) {
            (true, r) => {
                if r.is_none() {
                    self.anomaly(format!(
                        "rename onto {to}: the event says nothing was replaced"
                    ));
                }
                self.remove(to);
            }
            (false, Some(node)) => {
                self.anomaly(format!("rename onto {to}, which was never announced"));
                if self.ancestors_original(to) && !self.originals.contains_key(to) {
                    let id = self.pre_existing_node(node);
                    self.originals.insert(
                        to.to_string(),
                        Original {
                            what: OrigWhat::File(id),
                            gone: true,
                        },
                    );
                }
            }
            (false, None) => {}
        }
        // The source, and everything below it.
        let below = self.keys_below(from);
        self.move_one(from, to, false);
        for old in below {
            let new = format!("{to}{}", &old[from.len()..]);
            self.move_one(&old, &new, true);
        }
    }

    // ----- the end -----

    /// A path where node `id` can be hashed now.
    fn path_for(&self, id: usize) -> Option<&str> {
        let n = &self.nodes[id];
        if let Some(p) = n.names.first() {
            return Some(p);
        }
        let hint = n.hint.as_deref()?;
        let untouched = !self.names.contains_key(hint)
            && !self.originals.contains_key(hint)
            && self.ancestors_original(hint);
        untouched.then_some(hint)
    }

    /// The before-state of node `id`: recorded, or its current content if the
    /// tree never opened it for writing nor truncated it.
    fn before_digest(&self, id: usize, finals: &mut Finals<'_, D>) -> Option<D> {
        let n = &self.nodes[id];
        if let Some(d) = &n.before {
            return Some(d.clone());
        }
        if n.write_opened || n.truncated {
            return None;
        }
        finals.node(self, id)
    }

    fn compute(&self, final_digest: &mut dyn FnMut(&str, Option<Node>) -> Option<D>) -> Outcome<D> {
        let mut finals = Finals {
            f: final_digest,
            nodes: HashMap::new(),
            links: HashMap::new(),
        };
        let mut notes = self.notes.clone();

        // Whether each pre-existing node's content was destroyed or changed.
        let changed: Vec<bool> = (0..self.nodes.len())
            .map(|id| {
                let n = &self.nodes[id];
                if !n.pre_existing {
                    false
                } else if n.truncated {
                    true
                } else if n.write_opened && !n.names.is_empty() {
                    let after = finals.node(self, id);
                    // Unknown either side: count it as changed (and the
                    // missing digest is reported below).
                    match (&n.before, &after) {
                        (Some(b), Some(a)) => b != a,
                        _ => true,
                    }
                } else {
                    false
                }
            })
            .collect();

        let mut materials = BTreeMap::new();
        let mut original_names: HashMap<usize, Vec<String>> = HashMap::new();
        for (path, o) in &self.originals {
            let target = match o.what {
                OrigWhat::File(id) => {
                    original_names.entry(id).or_default().push(path.clone());
                    let n = &self.nodes[id];
                    if !(o.gone || n.read || n.linked || changed[id]) {
                        continue;
                    }
                    Some(id)
                }
                OrigWhat::Symlink(_) if !o.gone => continue,
                OrigWhat::Symlink(SymTarget::NotArtifact) => {
                    notes.push(Note::NonArtifactSymlink { path: path.clone() });
                    continue;
                }
                OrigWhat::Symlink(SymTarget::Unknown) => None,
                OrigWhat::Symlink(SymTarget::File(id)) => Some(id),
            };
            match target.and_then(|id| self.before_digest(id, &mut finals)) {
                Some(d) => {
                    materials.insert(path.clone(), d);
                }
                None => notes.push(Note::MissingBeforeState { path: path.clone() }),
            }
        }

        let mut products = BTreeMap::new();
        for (path, b) in &self.names {
            let digest = match b.what {
                What::File(id) => {
                    let n = &self.nodes[id];
                    if b.original && n.pre_existing && !changed[id] {
                        continue;
                    }
                    let d = finals.node(self, id);
                    if d.is_none() {
                        notes.push(Note::MissingFinalDigest { path: path.clone() });
                    }
                    d
                }
                What::Symlink if !b.original => {
                    let d = finals.link(path);
                    if d.is_none() {
                        notes.push(Note::NonArtifactSymlink { path: path.clone() });
                    }
                    d
                }
                _ => None,
            };
            if let Some(d) = digest {
                products.insert(path.clone(), d);
            }
        }

        for (id, n) in self.nodes.iter().enumerate() {
            if !n.pre_existing {
                if n.names.is_empty()
                    && let Some(path) = &n.created_as
                {
                    notes.push(Note::Transient { path: path.clone() });
                }
                continue;
            }
            if !changed[id] {
                continue;
            }
            let seen = original_names.get(&id).cloned().unwrap_or_default();
            if let Some(nlink) = n.orig_nlink
                && nlink > seen.len() as u64
            {
                notes.push(Note::UnseenHardLinks {
                    paths: seen.clone(),
                    nlink,
                });
            }
            if n.changed_after_dir_move {
                notes.push(Note::ChangedAfterDirRename {
                    before: seen,
                    after: n.names.iter().cloned().collect(),
                });
            }
        }

        Outcome {
            materials,
            products,
            notes,
        }
    }
}

/// Final digests, each asked for once.
struct Finals<'a, D> {
    f: &'a mut dyn FnMut(&str, Option<Node>) -> Option<D>,
    nodes: HashMap<usize, Option<D>>,
    links: HashMap<String, Option<D>>,
}

impl<D: Clone + Eq> Finals<'_, D> {
    fn node(&mut self, t: &Tracker<D>, id: usize) -> Option<D> {
        if let Some(d) = self.nodes.get(&id) {
            return d.clone();
        }
        let d = t
            .path_for(id)
            .and_then(|path| (self.f)(path, Some(t.nodes[id].node)));
        self.nodes.insert(id, d.clone());
        d
    }

    fn link(&mut self, path: &str) -> Option<D> {
        if let Some(d) = self.links.get(path) {
            return d.clone();
        }
        let d = (self.f)(path, None);
        self.links.insert(path.to_string(), d.clone());
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PID: Pid = 7;

    fn n(ino: u64) -> Node {
        (1, ino)
    }

    fn found(path: &str, ino: u64) -> Event {
        Event::Found(Entry::file(path, n(ino)))
    }

    fn found_dir(path: &str, ino: u64) -> Event {
        Event::Found(Entry::dir(path, n(ino)))
    }

    fn found_link(path: &str, ino: u64, target: Option<(&str, u64)>) -> Event {
        Event::Found(Entry::symlink(path, n(ino), target.map(|(p, i)| (p, n(i)))))
    }

    fn found_nlink(path: &str, ino: u64, nlink: u64) -> Event {
        Event::Found(Entry {
            nlink,
            ..Entry::file(path, n(ino))
        })
    }

    fn open(path: &str, ino: u64, read: bool, write: bool, truncate: bool) -> Event {
        Event::Open {
            path: path.into(),
            node: n(ino),
            read,
            write,
            truncate,
            pid: PID,
        }
    }

    fn read(path: &str, ino: u64) -> Event {
        open(path, ino, true, false, false)
    }

    fn write(path: &str, ino: u64) -> Event {
        open(path, ino, false, true, false)
    }

    fn create(path: &str, ino: u64) -> Event {
        Event::Create {
            path: path.into(),
            node: n(ino),
            pid: PID,
        }
    }

    fn unlink(path: &str) -> Event {
        Event::Unlink {
            path: path.into(),
            pid: PID,
        }
    }

    fn rename(from: &str, to: &str, replaced: Option<u64>) -> Event {
        Event::Rename {
            from: from.into(),
            to: to.into(),
            replaced: replaced.map(n),
            moved: vec![],
            pid: PID,
        }
    }

    fn rename_dir(from: &str, to: &str, moved: Vec<Entry>) -> Event {
        Event::Rename {
            from: from.into(),
            to: to.into(),
            replaced: None,
            moved,
            pid: PID,
        }
    }

    fn link(from: &str, to: &str, ino: u64) -> Event {
        Event::Link {
            from: from.into(),
            to: to.into(),
            node: n(ino),
            pid: PID,
        }
    }

    fn symlink(path: &str, target: Option<&str>) -> Event {
        Event::Symlink {
            path: path.into(),
            resolved_target: target.map(str::to_string),
            pid: PID,
        }
    }

    fn mkdir(path: &str) -> Event {
        Event::Mkdir {
            path: path.into(),
            pid: PID,
        }
    }

    fn rmdir(path: &str) -> Event {
        Event::Rmdir {
            path: path.into(),
            pid: PID,
        }
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A fake monitor: file contents by node (a content is its own digest),
    /// before-states taken at the safe points as the real daemon does.
    struct Sim {
        t: Tracker<String>,
        content: HashMap<Node, String>,
        /// Final digest of each symlink path (what it resolves to at the end).
        links: HashMap<String, String>,
        /// The queries `finish` made.
        asked: Vec<FinalQuery>,
    }

    impl Sim {
        /// Pre-existing files: (inode, content).
        fn new(files: &[(u64, &str)]) -> Self {
            Sim {
                t: Tracker::new(),
                content: files.iter().map(|(i, c)| (n(*i), c.to_string())).collect(),
                links: HashMap::new(),
                asked: Vec::new(),
            }
        }

        /// Applies an event, hashing first where the daemon must (any open
        /// or truncation of a file whose before-state is missing).
        fn ev(&mut self, ev: Event) -> &mut Self {
            match &ev {
                Event::Open { node, .. } | Event::Truncate { node, .. } => {
                    self.snap(node.1);
                }
                _ => {}
            }
            self.t.apply(&ev);
            self
        }

        fn evs(&mut self, evs: Vec<Event>) -> &mut Self {
            for ev in evs {
                self.ev(ev);
            }
            self
        }

        /// The daemon keeps the inode of an unlinked or replaced file and
        /// hashes it.
        fn snap(&mut self, ino: u64) -> &mut Self {
            if self.t.needs_before_state(n(ino))
                && let Some(c) = self.content.get(&n(ino))
            {
                self.t.set_before(n(ino), c.clone());
            }
            self
        }

        /// The tree writes `content` into the file.
        fn put(&mut self, ino: u64, content: &str) -> &mut Self {
            self.content.insert(n(ino), content.to_string());
            self
        }

        fn link_final(&mut self, path: &str, digest: &str) -> &mut Self {
            self.links.insert(path.to_string(), digest.to_string());
            self
        }

        fn finish(&mut self) -> Outcome<String> {
            let t = std::mem::take(&mut self.t);
            let expected = t.final_queries();
            let mut asked = Vec::new();
            let content = &self.content;
            let links = &self.links;
            let out = t.finish(|path, node| {
                asked.push((path.to_string(), node));
                match node {
                    Some(node) => content.get(&node).cloned(),
                    None => links.get(path).cloned(),
                }
            });
            assert_eq!(
                asked, expected,
                "final_queries lists exactly what finish asks"
            );
            self.asked = asked;
            out
        }
    }

    fn check(out: &Outcome<String>, materials: &[(&str, &str)], products: &[(&str, &str)]) {
        assert_eq!(out.materials, map(materials), "materials");
        assert_eq!(out.products, map(products), "products");
    }

    fn no_errors(out: &Outcome<String>) {
        assert!(
            out.notes.iter().all(|n| !n.is_error()),
            "unexpected errors: {:?}",
            out.notes
        );
    }

    // ----- the examples of docs/recording.md -----

    #[test]
    fn cat_a_is_a_material() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), read("a", 1)])
            .finish();
        check(&out, &[("a", "v1")], &[]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn echo_into_new_file_is_a_product() {
        let out = Sim::new(&[]).ev(create("new", 2)).put(2, "x").finish();
        check(&out, &[], &[("new", "x")]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn echo_over_a_file_is_material_and_product() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), open("a", 1, false, true, true)])
            .put(1, "x")
            .finish();
        check(&out, &[("a", "v1")], &[("a", "x")]);
        no_errors(&out);
    }

    #[test]
    fn echo_over_a_file_with_the_same_bytes_is_still_both() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), open("a", 1, false, true, true)])
            .put(1, "v1")
            .finish();
        check(&out, &[("a", "v1")], &[("a", "v1")]);
    }

    #[test]
    fn append_is_material_and_product() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), write("a", 1)])
            .put(1, "v1+x")
            .finish();
        check(&out, &[("a", "v1")], &[("a", "v1+x")]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn sed_in_place_never_records_the_temporary_file() {
        // sed -i: read a, create a temporary file beside it, rename it onto a.
        let mut s = Sim::new(&[(1, "v1")]);
        s.evs(vec![found("a", 1), read("a", 1), create("sedAbC12", 2)]);
        s.put(2, "v2");
        s.snap(1); // the daemon keeps the replaced inode
        s.ev(rename("sedAbC12", "a", Some(1)));
        let out = s.finish();
        check(&out, &[("a", "v1")], &[("a", "v2")]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn mv_is_material_old_name_and_product_new_name() {
        // No hash at the rename: the before-state is the unchanged content.
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), rename("a", "b", None)])
            .finish();
        check(&out, &[("a", "v1")], &[("b", "v1")]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn rm_is_a_material() {
        let out = Sim::new(&[(1, "v1")])
            .ev(found("a", 1))
            .snap(1)
            .ev(unlink("a"))
            .finish();
        check(&out, &[("a", "v1")], &[]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn rm_without_a_before_state_is_an_error() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), unlink("a")])
            .finish();
        check(&out, &[], &[]);
        assert_eq!(
            out.notes,
            vec![Note::MissingBeforeState { path: "a".into() }]
        );
        assert!(out.notes[0].is_error());
    }

    #[test]
    fn cp_is_material_source_and_product_copy() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), read("a", 1), create("b", 2)])
            .put(2, "v1")
            .finish();
        check(&out, &[("a", "v1")], &[("b", "v1")]);
    }

    #[test]
    fn cp_over_an_existing_file() {
        let out = Sim::new(&[(1, "v1"), (2, "old")])
            .evs(vec![
                found("a", 1),
                read("a", 1),
                found("b", 2),
                open("b", 2, false, true, true),
            ])
            .put(2, "v1")
            .finish();
        check(&out, &[("a", "v1"), ("b", "old")], &[("b", "v1")]);
    }

    #[test]
    fn ln_is_material_source_and_product_new_name() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), link("a", "b", 1)])
            .finish();
        check(&out, &[("a", "v1")], &[("b", "v1")]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn created_then_deleted_is_neither_but_noted() {
        let out = Sim::new(&[])
            .ev(create("t", 2))
            .put(2, "x")
            .ev(unlink("t"))
            .finish();
        check(&out, &[], &[]);
        assert_eq!(out.notes, vec![Note::Transient { path: "t".into() }]);
        assert!(!out.notes[0].is_error());
    }

    #[test]
    fn stat_test_ls_chmod_are_neither() {
        // stat/test -f/ls/chmod reach the monitor as lookups (and SETATTRs
        // that are not truncations, which are not events).
        let mut s = Sim::new(&[(1, "v1"), (2, "v2")]);
        s.evs(vec![found_dir("d", 10), found("d/a", 1), found("b", 2)]);
        let out = s.finish();
        check(&out, &[], &[]);
        assert!(out.notes.is_empty());
        assert!(s.asked.is_empty(), "nothing to hash");
    }

    #[test]
    fn touch_of_an_existing_file_is_neither() {
        // touch opens O_WRONLY|O_CREAT and writes nothing.
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), write("a", 1)])
            .finish();
        check(&out, &[], &[]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn rdwr_open_left_unchanged_is_a_material_only() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), open("a", 1, true, true, false)])
            .finish();
        check(&out, &[("a", "v1")], &[]);
    }

    #[test]
    fn rdwr_open_that_changes_is_both() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), open("a", 1, true, true, false)])
            .put(1, "v2")
            .finish();
        check(&out, &[("a", "v1")], &[("a", "v2")]);
    }

    #[test]
    fn truncate_syscall_is_both_even_with_same_bytes() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![
                found("a", 1),
                write("a", 1),
                Event::Truncate {
                    node: n(1),
                    pid: PID,
                },
            ])
            .finish();
        check(&out, &[("a", "v1")], &[("a", "v1")]);
    }

    #[test]
    fn directory_rename_moves_every_file_below() {
        // d/x was looked up; d/y, d/sub and d/sub/z only come from the walk.
        let out = Sim::new(&[(1, "x1"), (2, "y1"), (3, "z1")])
            .evs(vec![
                found_dir("d", 10),
                found("d/x", 1),
                rename_dir(
                    "d",
                    "e",
                    vec![
                        Entry::file("d/x", n(1)),
                        Entry::file("d/y", n(2)),
                        Entry::dir("d/sub", n(11)),
                        Entry::file("d/sub/z", n(3)),
                    ],
                ),
            ])
            .finish();
        check(
            &out,
            &[("d/sub/z", "z1"), ("d/x", "x1"), ("d/y", "y1")],
            &[("e/sub/z", "z1"), ("e/x", "x1"), ("e/y", "y1")],
        );
        assert!(out.notes.is_empty());
    }

    #[test]
    fn file_changed_after_its_directory_was_renamed_keeps_its_before_state() {
        let out = Sim::new(&[(1, "v1"), (2, "y1")])
            .evs(vec![
                found_dir("d", 10),
                rename_dir(
                    "d",
                    "e",
                    vec![Entry::file("d/x", n(1)), Entry::file("d/y", n(2))],
                ),
                write("e/x", 1),
            ])
            .put(1, "v2")
            .finish();
        check(
            &out,
            &[("d/x", "v1"), ("d/y", "y1")],
            &[("e/x", "v2"), ("e/y", "y1")],
        );
        assert_eq!(
            out.notes,
            vec![Note::ChangedAfterDirRename {
                before: vec!["d/x".into()],
                after: vec!["e/x".into()],
            }]
        );
    }

    #[test]
    fn reading_through_a_symlink_records_the_target() {
        // The kernel resolves l and opens a: the monitor sees a's open.
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![
                found_link("l", 20, Some(("a", 1))),
                found("a", 1),
                read("a", 1),
            ])
            .finish();
        check(&out, &[("a", "v1")], &[]);
    }

    #[test]
    fn creating_a_symlink_is_a_product_with_the_target_digest() {
        let out = Sim::new(&[(1, "v1")])
            .ev(symlink("l", Some("a")))
            .link_final("l", "v1")
            .finish();
        check(&out, &[], &[("l", "v1")]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn deleting_a_symlink_is_a_material_with_the_target_digest() {
        // The target a was never looked up by name: its digest comes from
        // the path the symlink resolved to.
        let mut s = Sim::new(&[(1, "v1")]);
        s.evs(vec![found_link("l", 20, Some(("a", 1))), unlink("l")]);
        let out = s.finish();
        check(&out, &[("l", "v1")], &[]);
        assert!(out.notes.is_empty());
        assert_eq!(s.asked, vec![("a".to_string(), Some(n(1)))]);
    }

    #[test]
    fn deleting_a_symlink_whose_target_was_rewritten_uses_the_before_state() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![
                found_link("l", 20, Some(("a", 1))),
                found("a", 1),
                open("a", 1, false, true, true),
            ])
            .put(1, "v2")
            .ev(unlink("l"))
            .finish();
        check(&out, &[("a", "v1"), ("l", "v1")], &[("a", "v2")]);
    }

    #[test]
    fn retargeting_a_symlink_is_a_deletion_plus_a_creation() {
        // ln -sf b l
        let out = Sim::new(&[(1, "va"), (2, "vb")])
            .evs(vec![
                found_link("l", 20, Some(("a", 1))),
                unlink("l"),
                symlink("l", Some("b")),
            ])
            .link_final("l", "vb")
            .finish();
        check(&out, &[("l", "va")], &[("l", "vb")]);
    }

    #[test]
    fn renaming_a_symlink() {
        let out = Sim::new(&[(1, "va")])
            .evs(vec![
                found_link("l", 20, Some(("a", 1))),
                rename("l", "m", None),
            ])
            .link_final("m", "va")
            .finish();
        check(&out, &[("l", "va")], &[("m", "va")]);
    }

    #[test]
    fn symlinks_to_dirs_outside_or_dangling_are_not_artifacts() {
        let out = Sim::new(&[])
            .evs(vec![
                found_link("old", 20, None),
                unlink("old"),
                symlink("dangling", None),
                symlink("todir", None),
            ])
            .finish();
        check(&out, &[], &[]);
        assert_eq!(
            out.notes,
            vec![
                Note::NonArtifactSymlink { path: "old".into() },
                Note::NonArtifactSymlink {
                    path: "dangling".into()
                },
                Note::NonArtifactSymlink {
                    path: "todir".into()
                },
            ]
        );
        assert!(out.notes.iter().all(|n| !n.is_error()));
    }

    #[test]
    fn a_write_through_one_hard_link_changes_every_name_seen() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![
                found_nlink("a", 1, 2),
                found_nlink("b", 1, 2),
                write("a", 1),
            ])
            .put(1, "v2")
            .finish();
        check(
            &out,
            &[("a", "v1"), ("b", "v1")],
            &[("a", "v2"), ("b", "v2")],
        );
        assert!(out.notes.is_empty());
    }

    #[test]
    fn a_changed_file_with_unseen_hard_links_is_reported() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found_nlink("a", 1, 3), write("a", 1)])
            .put(1, "v2")
            .finish();
        check(&out, &[("a", "v1")], &[("a", "v2")]);
        assert_eq!(
            out.notes,
            vec![Note::UnseenHardLinks {
                paths: vec!["a".into()],
                nlink: 3,
            }]
        );
    }

    #[test]
    fn unseen_hard_links_count_links_the_tree_made_before_the_lookup() {
        // d/x and z are the two names of one file at the start. d/x is only
        // known from a directory walk (link count unknown); the tree links it
        // to y, then looks z up, whose count (3) includes y.
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![
                found_dir("d", 10),
                rename_dir(
                    "d",
                    "e",
                    vec![Entry {
                        nlink: 0,
                        ..Entry::file("d/x", n(1))
                    }],
                ),
                link("e/x", "y", 1),
                found_nlink("z", 1, 3),
                write("y", 1),
            ])
            .put(1, "v2")
            .finish();
        check(
            &out,
            &[("d/x", "v1"), ("z", "v1")],
            &[("e/x", "v2"), ("y", "v2"), ("z", "v2")],
        );
        assert!(
            out.notes
                .iter()
                .all(|n| !matches!(n, Note::UnseenHardLinks { .. })),
            "{:?}",
            out.notes
        );
    }

    #[test]
    fn hard_links_alone_are_not_reported_when_the_file_is_unchanged() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found_nlink("a", 1, 5), read("a", 1)])
            .finish();
        check(&out, &[("a", "v1")], &[]);
        assert!(out.notes.is_empty());
    }

    // ----- the tricky cases -----

    #[test]
    fn rename_chain() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![
                found("a", 1),
                rename("a", "b", None),
                rename("b", "c", None),
            ])
            .finish();
        check(&out, &[("a", "v1")], &[("c", "v1")]);
    }

    #[test]
    fn rename_chain_through_a_pre_existing_name() {
        let out = Sim::new(&[(1, "v1"), (2, "old")])
            .evs(vec![found("a", 1), found("b", 2)])
            .snap(2)
            .evs(vec![rename("a", "b", Some(2)), rename("b", "c", None)])
            .finish();
        check(&out, &[("a", "v1"), ("b", "old")], &[("c", "v1")]);
    }

    #[test]
    fn mv_onto_an_existing_file() {
        let out = Sim::new(&[(1, "v1"), (2, "old")])
            .evs(vec![found("a", 1), found("b", 2)])
            .snap(2)
            .ev(rename("a", "b", Some(2)))
            .finish();
        check(&out, &[("a", "v1"), ("b", "old")], &[("b", "v1")]);
    }

    #[test]
    fn rename_of_a_created_file_is_a_product_only() {
        let out = Sim::new(&[])
            .ev(create("t", 2))
            .put(2, "x")
            .evs(vec![rename("t", "u", None), rename("u", "out", None)])
            .finish();
        check(&out, &[], &[("out", "x")]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn rename_back_to_the_original_name_is_material_and_product() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![
                found("a", 1),
                rename("a", "tmp", None),
                rename("tmp", "a", None),
            ])
            .finish();
        check(&out, &[("a", "v1")], &[("a", "v1")]);
    }

    #[test]
    fn unlink_then_create_of_the_same_name() {
        let out = Sim::new(&[(1, "v1")])
            .ev(found("a", 1))
            .snap(1)
            .evs(vec![unlink("a"), create("a", 2)])
            .put(2, "v2")
            .finish();
        check(&out, &[("a", "v1")], &[("a", "v2")]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn inode_number_reused_by_a_new_file() {
        let out = Sim::new(&[(1, "v1")])
            .ev(found("a", 1))
            .snap(1)
            .evs(vec![unlink("a"), create("b", 1)])
            .put(1, "new")
            .finish();
        check(&out, &[("a", "v1")], &[("b", "new")]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn rm_rf_of_a_directory() {
        let out = Sim::new(&[(1, "x1"), (2, "y1")])
            .evs(vec![found_dir("d", 10), found("d/x", 1), found("d/y", 2)])
            .snap(1)
            .snap(2)
            .evs(vec![
                create("d/new", 3),
                unlink("d/x"),
                unlink("d/y"),
                unlink("d/new"),
                rmdir("d"),
            ])
            .finish();
        check(&out, &[("d/x", "x1"), ("d/y", "y1")], &[]);
        assert_eq!(
            out.notes,
            vec![Note::Transient {
                path: "d/new".into()
            }]
        );
    }

    #[test]
    fn files_still_known_under_a_removed_directory_count_as_deleted() {
        let out = Sim::new(&[(1, "x1")])
            .evs(vec![found_dir("d", 10), found("d/x", 1)])
            .snap(1)
            .ev(rmdir("d"))
            .finish();
        check(&out, &[("d/x", "x1")], &[]);
        assert_eq!(out.notes.len(), 1);
        assert!(matches!(&out.notes[0], Note::Anomaly { .. }));
    }

    #[test]
    fn rename_of_a_directory_created_during_the_run() {
        let out = Sim::new(&[])
            .evs(vec![mkdir("t"), create("t/a", 2)])
            .put(2, "x")
            .ev(rename_dir("t", "out", vec![Entry::file("t/a", n(2))]))
            .finish();
        check(&out, &[], &[("out/a", "x")]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn directory_renamed_onto_an_empty_directory() {
        let out = Sim::new(&[(1, "x1")])
            .evs(vec![
                found_dir("d", 10),
                found_dir("e", 11),
                Event::Rename {
                    from: "d".into(),
                    to: "e".into(),
                    replaced: Some(n(11)),
                    moved: vec![Entry::file("d/x", n(1))],
                    pid: PID,
                },
            ])
            .finish();
        check(&out, &[("d/x", "x1")], &[("e/x", "x1")]);
        no_errors(&out);
    }

    #[test]
    fn directory_renamed_twice() {
        let out = Sim::new(&[(1, "x1")])
            .evs(vec![
                found_dir("d", 10),
                rename_dir("d", "e", vec![Entry::file("d/x", n(1))]),
                rename_dir("e", "f", vec![Entry::file("e/x", n(1))]),
            ])
            .finish();
        check(&out, &[("d/x", "x1")], &[("f/x", "x1")]);
        no_errors(&out);
    }

    #[test]
    fn symlink_inside_a_renamed_directory() {
        let out = Sim::new(&[(1, "x1")])
            .evs(vec![
                found_dir("d", 10),
                rename_dir(
                    "d",
                    "e",
                    vec![
                        Entry::file("d/x", n(1)),
                        Entry::symlink("d/l", n(20), Some(("d/x", n(1)))),
                    ],
                ),
            ])
            .link_final("e/l", "x1")
            .finish();
        check(
            &out,
            &[("d/l", "x1"), ("d/x", "x1")],
            &[("e/l", "x1"), ("e/x", "x1")],
        );
    }

    #[test]
    fn read_after_mv() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), rename("a", "b", None), read("b", 1)])
            .finish();
        check(&out, &[("a", "v1")], &[("b", "v1")]);
    }

    #[test]
    fn write_after_mv_keeps_the_before_state() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), rename("a", "b", None), write("b", 1)])
            .put(1, "v2")
            .finish();
        check(&out, &[("a", "v1")], &[("b", "v2")]);
        assert!(
            out.notes.is_empty(),
            "a plain rename is not a directory rename"
        );
    }

    #[test]
    fn rename_between_two_names_of_one_file_does_nothing() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![
                found_nlink("a", 1, 2),
                found_nlink("b", 1, 2),
                rename("a", "b", Some(1)),
            ])
            .finish();
        check(&out, &[], &[]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn modified_file_that_is_then_deleted() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), write("a", 1)])
            .put(1, "v2")
            .ev(unlink("a"))
            .finish();
        check(&out, &[("a", "v1")], &[]);
        assert!(out.notes.is_empty());
    }

    #[test]
    fn write_to_a_file_created_during_the_run_is_just_a_product() {
        let out = Sim::new(&[])
            .evs(vec![create("o", 2), open("o", 2, true, true, true)])
            .put(2, "x")
            .finish();
        check(&out, &[], &[("o", "x")]);
    }

    // ----- the monitor's queries -----

    #[test]
    fn needs_before_state_follows_the_safe_points() {
        let mut t: Tracker<String> = Tracker::new();
        assert!(t.needs_before_state(n(9)), "unknown: assume pre-existing");
        t.apply(&found("a", 1));
        assert!(t.needs_before_state(n(1)));
        t.set_before(n(1), "v1".into());
        assert!(!t.needs_before_state(n(1)));
        t.set_before(n(1), "later".into()); // the first one wins
        t.apply(&create("b", 2));
        assert!(!t.needs_before_state(n(2)), "created during the run");
        t.apply(&found("c", 3));
        t.apply(&write("c", 3)); // the monitor failed to hash before answering
        assert!(
            !t.needs_before_state(n(3)),
            "too late: the content may have changed"
        );
        let out = t.finish(|_, node| match node {
            Some(node) if node == n(1) => Some("v1".to_string()),
            Some(node) if node == n(3) => Some("v3".to_string()),
            _ => Some("x".to_string()),
        });
        check(&out, &[], &[("b", "x"), ("c", "v3")]);
        assert_eq!(
            out.notes,
            vec![Note::MissingBeforeState { path: "c".into() }]
        );
    }

    #[test]
    fn a_before_state_taken_for_an_unlink_may_arrive_after_the_event() {
        let mut t: Tracker<String> = Tracker::new();
        t.apply(&found("a", 1));
        assert!(t.needs_before_state(n(1)));
        t.apply(&unlink("a"));
        assert!(t.needs_before_state(n(1)));
        t.set_before(n(1), "v1".into());
        let out = t.finish(|_, _| None);
        check(&out, &[("a", "v1")], &[]);
    }

    #[test]
    fn an_unhashable_product_is_an_error() {
        let mut t: Tracker<String> = Tracker::new();
        t.apply(&create("b", 2));
        assert_eq!(t.final_queries(), vec![("b".to_string(), Some(n(2)))]);
        let out = t.finish(|_, _| None);
        check(&out, &[], &[]);
        assert_eq!(
            out.notes,
            vec![Note::MissingFinalDigest { path: "b".into() }]
        );
    }

    #[test]
    fn each_final_digest_is_asked_once() {
        let mut s = Sim::new(&[(1, "v1")]);
        s.evs(vec![
            found_nlink("a", 1, 2),
            found_nlink("b", 1, 2),
            write("a", 1),
        ]);
        s.put(1, "v2");
        let out = s.finish();
        check(
            &out,
            &[("a", "v1"), ("b", "v1")],
            &[("a", "v2"), ("b", "v2")],
        );
        assert_eq!(s.asked, vec![("a".to_string(), Some(n(1)))]);
    }

    #[test]
    fn an_unannounced_open_is_an_anomaly_but_still_recorded() {
        let out = Sim::new(&[(1, "v1")]).ev(read("a", 1)).finish();
        check(&out, &[("a", "v1")], &[]);
        assert_eq!(out.notes.len(), 1);
        assert!(out.notes[0].is_error());
    }

    #[test]
    fn a_repeated_lookup_changes_nothing() {
        let out = Sim::new(&[(1, "v1")])
            .evs(vec![found("a", 1), rename("a", "b", None), found("b", 1)])
            .finish();
        check(&out, &[("a", "v1")], &[("b", "v1")]);
        assert!(out.notes.is_empty());
    }
}
