//! Each process's address space as the capture saw it being built (mmap, munmap, mremap, brk,
//! reset by exec), so a faulting address can be named: stack, heap, anonymous or file mapping.
use std::collections::BTreeMap;

use foldhash::HashMap;

use observer_common::{syscalls::Syscall, SyscallEvent};

use crate::decode::{is_error_return, mmap_flags, prot_flags, MAP_STACK};

const MAP_ANONYMOUS: u64 = 0x20;
const MAP_GROWSDOWN: u64 = 0x100;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    pub prot: u64,
    pub flags: u64,
    pub fd: i32,
    pub offset: u64,
}

impl Mapping {
    pub fn describe(&self, addr: u64) -> String {
        let what = if self.flags & (MAP_STACK | MAP_GROWSDOWN) != 0 {
            "a thread stack".to_string()
        } else if self.flags & MAP_ANONYMOUS != 0 {
            "an anonymous mapping".to_string()
        } else {
            format!("a mapping of fd {} at file offset {:#x}", self.fd, self.offset.saturating_add(addr - self.start))
        };
        format!("{what} {:#x}-{:#x} ({}, {})", self.start, self.end, prot_flags(self.prot), mmap_flags(self.flags))
    }
}

#[derive(Default)]
struct Space {
    maps: BTreeMap<u64, Mapping>,
    heap_start: Option<u64>,
    heap_end: Option<u64>,
}

impl Space {
    fn unmap(&mut self, start: u64, end: u64) {
        let overlapping: Vec<u64> = self.maps.range(..end).filter(|(_, m)| m.end > start).map(|(k, _)| *k).collect();
        for key in overlapping {
            let m = self.maps.remove(&key).expect("listed");
            if m.start < start {
                self.maps.insert(m.start, Mapping { end: start, ..m.clone() });
            }
            if m.end > end {
                let offset = m.offset.saturating_add(end - m.start);
                self.maps.insert(end, Mapping { start: end, offset, ..m });
            }
        }
    }

    fn map(&mut self, m: Mapping) {
        self.unmap(m.start, m.end);
        self.maps.insert(m.start, m);
    }

    fn find(&self, addr: u64) -> Option<&Mapping> {
        self.maps.range(..=addr).next_back().map(|(_, m)| m).filter(|m| addr < m.end)
    }
}

/// Address spaces by process.
#[derive(Default)]
pub struct AddressSpaces {
    spaces: HashMap<u32, Space>,
    /// The process of the latest call, which has a space already (none is ever removed): a
    /// process's calls come in runs, and a run costs no lookup but its memory calls'.
    latest: Option<u32>,
}

const PAGE: u64 = 4096;

fn page_up(n: u64) -> u64 {
    n.div_ceil(PAGE).saturating_mul(PAGE)
}

impl AddressSpaces {
    /// A new image replaced the process's address space.
    pub fn exec(&mut self, tgid: u32) {
        self.spaces.insert(tgid, Space::default());
    }

    pub fn syscall(&mut self, e: &SyscallEvent) {
        if !crate::event::returned(e) {
            return;
        }
        if is_error_return(e.ret).is_some() {
            return;
        }
        let Some(call) = Syscall::from_nr(e.nr) else { return };
        let tgid = e.header.tgid;
        // Every process with a returned call gets a space, which `describe` tells from none.
        if self.latest != Some(tgid) {
            self.spaces.entry(tgid).or_default();
            self.latest = Some(tgid);
        }
        if !matches!(call, Syscall::Mmap | Syscall::Munmap | Syscall::Mremap | Syscall::Brk) {
            return;
        }
        let space = self.spaces.entry(tgid).or_default();
        let a = e.args;
        match call {
            Syscall::Mmap => space.map(Mapping {
                start: e.ret as u64,
                end: (e.ret as u64).saturating_add(page_up(a[1])),
                prot: a[2],
                flags: a[3],
                fd: a[4] as i32,
                offset: a[5],
            }),
            Syscall::Munmap => space.unmap(a[0], a[0].saturating_add(page_up(a[1]))),
            Syscall::Mremap => {
                if let Some(old) = space.find(a[0]).cloned() {
                    space.unmap(a[0], a[0].saturating_add(page_up(a[1])));
                    space.map(Mapping {
                        start: e.ret as u64,
                        end: (e.ret as u64).saturating_add(page_up(a[2])),
                        ..old
                    });
                }
            }
            Syscall::Brk => {
                let top = e.ret as u64;
                space.heap_start.get_or_insert(top);
                space.heap_end = Some(top);
            }
            _ => {}
        }
    }

    /// What the capture knows about `addr` in process `tgid`.
    pub fn describe(&self, tgid: u32, addr: u64) -> String {
        if addr < 0x10000 {
            return format!("{addr:#x} is in the first 64 KiB, never mapped: a null-pointer dereference");
        }
        let Some(space) = self.spaces.get(&tgid) else {
            return format!("{addr:#x}: the capture saw no mappings of this process");
        };
        if let (Some(start), Some(end)) = (space.heap_start, space.heap_end) {
            if addr >= start && addr < end {
                return format!("{addr:#x} is in the heap (brk) {start:#x}-{end:#x}");
            }
        }
        match space.find(addr) {
            Some(m) => format!("{addr:#x} is in {}", m.describe(addr)),
            None => format!(
                "{addr:#x} is in no mapping the capture saw (the executable and stack mapped by exec itself are not recorded)"
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use observer_common::{kind, syscalls, EventHeader};

    use super::*;

    fn call(name: &str, args: [u64; 6], ret: i64) -> SyscallEvent {
        SyscallEvent {
            header: EventHeader { kind: kind::SYSCALL, tid: 5, tgid: 5, ..Default::default() },
            nr: syscalls::by_name(name).unwrap().nr,
            nargs: 6,
            args,
            ret,
            ..Default::default()
        }
    }

    #[test]
    fn addresses_are_named_by_the_mapping_that_holds_them() {
        let mut spaces = AddressSpaces::default();
        spaces.exec(5);
        spaces.syscall(&call("mmap", [0, 0x3000, 3, 0x20022, u64::MAX, 0], 0x7000_0000));
        spaces.syscall(&call("mmap", [0, 0x2000, 1, 0x2, 3, 0x1000], 0x6000_0000));
        spaces.syscall(&call("brk", [0; 6], 0x5000_0000));
        spaces.syscall(&call("brk", [0x5002_0000, 0, 0, 0, 0, 0], 0x5002_0000));
        assert!(spaces.describe(5, 0x7000_1000).contains("a thread stack 0x70000000-0x70003000"));
        assert!(spaces.describe(5, 0x6000_1010).contains("fd 3 at file offset 0x2010"));
        assert!(spaces.describe(5, 0x5001_0000).contains("heap (brk)"));
        assert!(spaces.describe(5, 0x10).contains("null-pointer"));
        spaces.syscall(&call("munmap", [0x7000_1000, 0x1000, 0, 0, 0, 0], 0));
        assert!(spaces.describe(5, 0x7000_1800).contains("no mapping"));
        assert!(spaces.describe(5, 0x7000_2000).contains("thread stack 0x70002000-0x70003000"));
    }
}
