//! Child processes wsgate starts (function instances, local services):
//! each a tree that ends as a whole (`tree`, `cgroup`, `reaper`), and a way
//! to tell whether a loopback connection comes from inside one (`peer`).

pub mod cgroup;
pub mod peer;
pub mod reaper;
pub mod tree;
