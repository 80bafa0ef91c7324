//! Loop devices for container images: attach (LOOP_CTL_GET_FREE + LOOP_CONFIGURE, with
//! autoclear: the device detaches itself once nothing holds it, so a vzctl that dies
//! half-way leaves no device behind unless the image is mounted), find by image, grow,
//! detach. No state of our own: the kernel's /sys/block/loopN/loop/backing_file says which
//! device serves which image.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

const LOOP_CLR_FD: u64 = 0x4C01;
const LOOP_SET_CAPACITY: u64 = 0x4C07;
const LOOP_CONFIGURE: u64 = 0x4C0A;
const LOOP_CTL_GET_FREE: u64 = 0x4C82;

const LO_FLAGS_AUTOCLEAR: u32 = 4;
const LO_FLAGS_DIRECT_IO: u32 = 16;
const LO_NAME_SIZE: usize = 64;

/// struct loop_info64
#[repr(C)]
struct LoopInfo64 {
    device: u64,
    inode: u64,
    rdevice: u64,
    offset: u64,
    sizelimit: u64,
    number: u32,
    encrypt_type: u32,
    encrypt_key_size: u32,
    flags: u32,
    file_name: [u8; LO_NAME_SIZE],
    crypt_name: [u8; LO_NAME_SIZE],
    encrypt_key: [u8; 32],
    init: [u64; 2],
}

/// struct loop_config
#[repr(C)]
struct LoopConfig {
    fd: u32,
    block_size: u32,
    info: LoopInfo64,
    reserved: [u64; 8],
}

nix::ioctl_none_bad!(loop_ctl_get_free, LOOP_CTL_GET_FREE);
nix::ioctl_write_ptr_bad!(loop_configure, LOOP_CONFIGURE, LoopConfig);
nix::ioctl_none_bad!(loop_clr_fd, LOOP_CLR_FD);
nix::ioctl_none_bad!(loop_set_capacity, LOOP_SET_CAPACITY);

/// An attached loop device, held open: it stays attached while this lives (and while a
/// mount uses it), and detaches when both are gone.
#[derive(Debug)]
pub struct LoopDevice {
    pub path: PathBuf,
    pub file: File,
}

/// Attaches `image` (read-write, direct I/O where the backing file system allows it).
pub fn attach(image: &Path) -> io::Result<LoopDevice> {
    let backing = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open(image)
        .map_err(|e| io::Error::new(e.kind(), format!("open {}: {e}", image.display())))?;
    let control = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_CLOEXEC)
        .open("/dev/loop-control")
        .map_err(|e| io::Error::new(e.kind(), format!("open /dev/loop-control: {e}")))?;
    let mut name = [0u8; LO_NAME_SIZE];
    let bytes = image.as_os_str().as_encoded_bytes();
    let n = bytes.len().min(LO_NAME_SIZE - 1);
    name[..n].copy_from_slice(&bytes[..n]);
    // Another process may take the free device between GET_FREE and CONFIGURE: try again.
    for _ in 0..16 {
        // SAFETY: LOOP_CTL_GET_FREE takes no argument and returns a device number.
        let number = unsafe { loop_ctl_get_free(control.as_raw_fd()) }.map_err(|e| {
            io::Error::new(
                io::Error::from(e).kind(),
                format!("no free loop device: {e}"),
            )
        })?;
        let path = PathBuf::from(format!("/dev/loop{number}"));
        let device = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_CLOEXEC)
            .open(&path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                make_node(&path, number as u64)?;
                OpenOptions::new().read(true).write(true).open(&path)?
            }
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("open {}: {e}", path.display()),
                ))
            }
        };
        let config = LoopConfig {
            fd: backing.as_raw_fd() as u32,
            block_size: 0,
            info: LoopInfo64 {
                device: 0,
                inode: 0,
                rdevice: 0,
                offset: 0,
                sizelimit: 0,
                number: 0,
                encrypt_type: 0,
                encrypt_key_size: 0,
                flags: LO_FLAGS_AUTOCLEAR | LO_FLAGS_DIRECT_IO,
                file_name: name,
                crypt_name: [0; LO_NAME_SIZE],
                encrypt_key: [0; 32],
                init: [0; 2],
            },
            reserved: [0; 8],
        };
        // SAFETY: LOOP_CONFIGURE reads the loop_config we pass; its fd stays open for the call.
        match unsafe { loop_configure(device.as_raw_fd(), &config) } {
            Ok(_) => return Ok(LoopDevice { path, file: device }),
            Err(nix::errno::Errno::EBUSY) => continue,
            Err(e) => {
                return Err(io::Error::new(
                    io::Error::from(e).kind(),
                    format!("attach {} to {}: {e}", image.display(), path.display()),
                ))
            }
        }
    }
    Err(io::Error::other(format!(
        "attach {}: every free loop device was taken meanwhile",
        image.display()
    )))
}

/// /dev without devtmpfs (a container's /dev): the node of loop device `number`.
fn make_node(path: &Path, number: u64) -> io::Result<()> {
    nix::sys::stat::mknod(
        path,
        nix::sys::stat::SFlag::S_IFBLK,
        nix::sys::stat::Mode::from_bits_truncate(0o660),
        nix::sys::stat::makedev(7, number),
    )
    .map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("mknod {}: {e}", path.display()),
        )
    })
}

/// Loop devices whose backing file is `image` (deleted or not).
pub fn find(image: &Path) -> Vec<PathBuf> {
    let want = std::fs::canonicalize(image).unwrap_or_else(|_| image.to_path_buf());
    let want = want.as_os_str().as_encoded_bytes();
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/sys/block") else {
        return found;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(name) = name.to_str().filter(|n| n.starts_with("loop")) else {
            continue;
        };
        let Ok(backing) = std::fs::read(e.path().join("loop/backing_file")) else {
            continue;
        };
        let mut backing = backing.strip_suffix(b"\n").unwrap_or(&backing).to_vec();
        if let Some(stripped) = backing.strip_suffix(b" (deleted)") {
            backing = stripped.to_vec();
        }
        if backing == want {
            found.push(PathBuf::from(format!("/dev/{name}")));
        }
    }
    found.sort();
    found
}

/// The (major, minor) of a block device node.
pub fn device_numbers(path: &Path) -> io::Result<(u64, u64)> {
    let st = nix::sys::stat::stat(path).map_err(io::Error::from)?;
    Ok((
        nix::sys::stat::major(st.st_rdev),
        nix::sys::stat::minor(st.st_rdev),
    ))
}

/// Detaches a loop device (at once when unused, else as soon as its last user goes).
pub fn detach(device: &Path) -> io::Result<()> {
    let file = File::open(device)?;
    // SAFETY: LOOP_CLR_FD takes no argument.
    match unsafe { loop_clr_fd(file.as_raw_fd()) } {
        Ok(_) | Err(nix::errno::Errno::ENXIO) => Ok(()),
        Err(e) => Err(io::Error::new(
            io::Error::from(e).kind(),
            format!("detach {}: {e}", device.display()),
        )),
    }
}

/// Makes the device see its backing file's new size.
pub fn refresh_capacity(device: &Path) -> io::Result<()> {
    let file = File::open(device)?;
    // SAFETY: LOOP_SET_CAPACITY takes no argument.
    unsafe { loop_set_capacity(file.as_raw_fd()) }.map_err(|e| {
        io::Error::new(
            io::Error::from(e).kind(),
            format!("resize {}: {e}", device.display()),
        )
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_layout_matches_the_kernel() {
        assert_eq!(std::mem::size_of::<LoopInfo64>(), 232);
        assert_eq!(std::mem::size_of::<LoopConfig>(), 304);
    }

    #[test]
    fn attach_find_detach() {
        if !nix::unistd::geteuid().is_root() {
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("img");
        File::create(&image).unwrap().set_len(8 << 20).unwrap();
        let device = attach(&image).unwrap();
        assert_eq!(find(&image), vec![device.path.clone()]);
        assert_eq!(device_numbers(&device.path).unwrap().0, 7);
        File::options()
            .write(true)
            .open(&image)
            .unwrap()
            .set_len(16 << 20)
            .unwrap();
        refresh_capacity(&device.path).unwrap();
        let sectors: u64 = std::fs::read_to_string(format!(
            "/sys/block/{}/size",
            device.path.file_name().unwrap().to_str().unwrap()
        ))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
        assert_eq!(sectors * 512, 16 << 20);
        // Autoclear: closing the only holder detaches it.
        drop(device);
        for _ in 0..100 {
            if find(&image).is_empty() {
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        assert!(find(&image).is_empty(), "autoclear detached it");
    }
}
