/* Which process holds which socket: every open file of every process that is
 * a socket, as (inode, tgid, fd, comm) rows. The kernel visits a thread group's
 * file table once (threads sharing it are skipped), so this is the same
 * information as a walk of /proc/PID/fd, without a readlink per descriptor. */
#include "vmlinux.h"

#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "tcb_records.h"

char LICENSE[] SEC("license") = "GPL";

#define TCB_S_IFMT 0170000
#define TCB_S_IFSOCK 0140000

SEC("iter/task_file")
int dump_files(struct bpf_iter__task_file *ctx) {
  struct task_struct *task = ctx->task;
  struct file *file = ctx->file;
  if (!task || !file) return 0;
  const umode_t mode = BPF_CORE_READ(file, f_inode, i_mode);
  if ((mode & TCB_S_IFMT) != TCB_S_IFSOCK) return 0;
  struct tcb_file_record r = {};
  r.inode = BPF_CORE_READ(file, f_inode, i_ino);
  r.tgid = BPF_CORE_READ(task, tgid);
  r.fd = ctx->fd;
  BPF_CORE_READ_STR_INTO(&r.comm, task, comm);
  bpf_seq_write(ctx->meta->seq, &r, sizeof(r));
  return 0;
}
