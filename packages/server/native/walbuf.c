/*
** walbuf: a SQLite VFS shim that coalesces the writes of a WAL commit into one pwrite().
**
** WHY. SQLite writes each WAL frame with two write calls (the 24-byte frame header, then the
** page), so a group commit of ~170 pages costs ~340 pwrite() system calls. On a VM every
** system call is expensive: perf put ~22 % of Magpie's SQLite writer thread in
** walWriteOneFrame (issue 23). This shim gathers a run of contiguous writes to a WAL file in
** memory and hands the whole run to the real file when anything else happens to that file, or
** when SQLite is about to publish the frames to other connections: in pieces of 124 KiB (the
** unix VFS writes at most 128 KiB - 1 per call), ~6 writes for a commit of 170 frames.
**
** WHAT. A VFS named "magpie-walbuf" that wraps the default VFS ("unix") and becomes the
** default (sqlite3_vfs_register(vfs, 1)), so every connection opened afterwards in the
** process, on any thread, goes through it.
**   - WAL files (SQLITE_OPEN_WAL): an xWrite that starts exactly where the buffered run ends
**     is appended to the run (up to WB_CAP bytes; a write that would pass the cap flushes
**     first). Every other method on the WAL file (a write elsewhere, xRead, xSync, xTruncate,
**     xFileSize, xFileControl, xLock/xUnlock/xCheckReservedLock, xClose, ...) first flushes
**     the run (wbFlush) into the underlying file, then does its work. So xSync (a commit
**     in synchronous=FULL) syncs data that is already in the file.
**   - The main database file: passed through, except that xShmBarrier, xShmLock and
**     xShmUnmap first flush the WAL file of the same connection (linked at the WAL's xOpen
**     through sqlite3_database_file_object()).
**   - Everything else (journals, temp files, ...): opened directly by the real VFS in the
**     memory SQLite gives us: untouched, no indirection.
**   - magpie_walbuf_enable(0|1) turns the shim off/on for WAL files opened afterwards (an
**     open file keeps its mode). It is registered on every connection (auto-extension), as is
**     magpie_walbuf_stats(): JSON counters of the whole process.
**
** WHY NO READER CAN SEE A FRAME THAT IS ONLY IN A BUFFER (checked against SQLite 3.53's
** sqlite3.c: walFrames, walIndexWriteHdr, walTryBeginRead, walCheckpoint, walRestartLog,
** sqlite3WalUndo, walRewriteChecksums, sqlite3WalClose).
**   1. Only the connection holding WAL_WRITE_LOCK writes frames (walFrames asserts writeLock),
**      and only into its own buffer. Another connection (another thread or process) reads a
**      frame only if it is <= the mxFrame of its snapshot, which it takes from the wal-index
**      header in shared memory; walIndexTryHdr accepts a header only when its two copies
**      aHdr[0] and aHdr[1] agree.
**   2. A commit publishes its frames in walIndexWriteHdr: copy aHdr[1], walShmBarrier()
**      (= xShmBarrier on the database file), copy aHdr[0]. Our xShmBarrier writes the buffer
**      before it returns, so by the time aHdr[0] (and thus an agreeing header) shows the new
**      mxFrame, the frames are in the file (the page cache: visible to every pread, and in
**      synchronous=FULL already fsynced by the xSync before). A reader that catches aHdr[1]
**      new and aHdr[0] old sees a torn header and must take WAL_WRITE_LOCK to recover, which
**      the committing writer holds: it retries. With locking_mode=EXCLUSIVE and the wal-index
**      in heap memory no barrier is called, but then no other connection reads the file.
**   3. Frames written but not committed (a cache spill inside a big transaction) stay
**      unpublished; the writer itself reads them back with xRead, which flushes first. If the
**      transaction rolls back, sqlite3WalUndo only rewinds mxFrame; the writer then releases
**      WAL_WRITE_LOCK with xShmLock, which flushes first: the stale frames reach the file
**      (where SQLite would have put them anyway) BEFORE another writer can take the lock and
**      write those offsets. A buffer can therefore never be written over a later writer's frames.
**   4. A WAL restart (walRestartLog) and the new WAL header happen under the write lock; the
**      header is just the first write of the run and is published like the frames (point 2).
**      Checkpoints (any connection) read frames <= a published mxFrame: in the file (point 2).
**      walRewriteChecksums, walLimitSize and sqlite3WalClose read/truncate/close the WAL
**      file: those flush first.
**   5. A process killed with a run in its buffer loses only frames no header published: on
**      the next open, recovery (walIndexRecover) keeps only frames with valid salts and
**      checksums, i.e. the last published commit, as without the shim.
**   A failed flush: where the caller can be told (every method that returns a code) the run
**   is dropped and the error returned. In xShmBarrier (void) it cannot, and the header that
**   follows would publish frames that are not in the file: the process aborts instead (after
**   a message on stderr); recovery at the next start then finds the last complete commit.
**
** THREADS. A WAL file object and its database file object belong to one connection, which
** SQLite (and better-sqlite3) uses from one thread at a time: no locking. Counters are
** process-wide atomics.
**
** Build: gcc -O2 -fPIC -shared -I<dir of sqlite3ext.h> walbuf.c -o walbuf.so
** (scripts/build-native.mjs). Load with db.loadExtension(path) before any file connection.
*/
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Largest run kept in memory (a commit of ~1 000 4 KiB frames). */
#define WB_CAP (4 * 1024 * 1024)
/* Largest piece handed to the real xWrite (31 pages; see wbFlush). */
#define WB_CHUNK (31 * 4096)
/* First allocation of a run buffer; it doubles up to WB_CAP. */
#define WB_INITIAL (256 * 1024)

typedef struct WbFile WbFile;
struct WbFile {
  sqlite3_file base;     /* pMethods = &wb_io_methods */
  sqlite3_file *pReal;   /* the real VFS's file, in the memory right after this struct */
  int isWal;             /* 1: a WAL file with a write buffer; 0: the main database file */
  WbFile *pPeer;         /* WAL file: its database file; database file: its open WAL file */
  unsigned char *aBuf;   /* WAL: the buffered run (aBuf[0] belongs at iBufOff) */
  sqlite3_int64 iBufOff;
  int nBuf;
  int nAlloc;
};

static sqlite3_vfs *gReal = 0;      /* the wrapped VFS */
static sqlite3_vfs gVfs;            /* this shim */
static int gEnabled = 1;            /* buffer WAL files opened from now on */

/* Process-wide counters (magpie_walbuf_stats). */
static sqlite3_int64 gWalOpens, gWritesAbsorbed, gWritesDirect, gFlushes, gFlushWrites, gFlushedBytes, gFlushErrors;
#define WB_ADD(v, n) __atomic_fetch_add(&(v), (n), __ATOMIC_RELAXED)
#define WB_GET(v) __atomic_load_n(&(v), __ATOMIC_RELAXED)

static const sqlite3_io_methods wb_io_methods;

/* Write the buffered run into the real file (WB_CHUNK at a time). On failure the run is dropped (see
** the header: never replay stale data later) and the error is returned. */
static int wbFlush(WbFile *p) {
  int rc = SQLITE_OK;
  int done = 0;
  if (p->nBuf == 0) return SQLITE_OK;
  /* The unix VFS writes at most 128 KiB - 1 per xWrite (seekAndWriteFd masks the size with
  ** 0x1ffff): WB_CHUNK-sized pieces, ~6 for a commit of 170 frames instead of 340 writes. */
  while (rc == SQLITE_OK && done < p->nBuf) {
    int n = p->nBuf - done < WB_CHUNK ? p->nBuf - done : WB_CHUNK;
    rc = p->pReal->pMethods->xWrite(p->pReal, p->aBuf + done, n, p->iBufOff + done);
    done += n;
    WB_ADD(gFlushWrites, 1);
  }
  WB_ADD(gFlushes, 1);
  WB_ADD(gFlushedBytes, p->nBuf);
  if (rc != SQLITE_OK) WB_ADD(gFlushErrors, 1);
  p->nBuf = 0;
  return rc;
}

/* The database file's hook: flush the WAL file of the same connection. */
static int wbFlushPeerWal(WbFile *pDb) {
  return pDb->pPeer ? wbFlush(pDb->pPeer) : SQLITE_OK;
}

/* Flush, for a method that is about to act on the file. */
static int wbPre(WbFile *p) {
  return p->isWal ? wbFlush(p) : SQLITE_OK;
}

static int wbClose(sqlite3_file *pFile) {
  WbFile *p = (WbFile *)pFile;
  int rc = wbPre(p);
  int rc2 = p->pReal->pMethods->xClose(p->pReal);
  if (p->pPeer) p->pPeer->pPeer = 0;
  p->pPeer = 0;
  sqlite3_free(p->aBuf);
  p->aBuf = 0;
  p->nAlloc = 0;
  return rc != SQLITE_OK ? rc : rc2;
}

static int wbRead(sqlite3_file *pFile, void *z, int n, sqlite3_int64 off) {
  WbFile *p = (WbFile *)pFile;
  int rc = wbPre(p);
  if (rc != SQLITE_OK) return rc;
  return p->pReal->pMethods->xRead(p->pReal, z, n, off);
}

static int wbWrite(sqlite3_file *pFile, const void *z, int n, sqlite3_int64 off) {
  WbFile *p = (WbFile *)pFile;
  int rc;
  if (!p->isWal) return p->pReal->pMethods->xWrite(p->pReal, z, n, off);
  /* Continues the run and fits under the cap: append. */
  if (p->nBuf > 0 && off == p->iBufOff + p->nBuf && p->nBuf + n <= WB_CAP) {
    if (p->nBuf + n > p->nAlloc) {
      int want = p->nAlloc;
      unsigned char *a;
      while (want < p->nBuf + n) want *= 2;
      if (want > WB_CAP) want = WB_CAP;
      a = sqlite3_realloc(p->aBuf, want);
      if (a == 0) {
        /* No memory for a bigger run: write what we have, then this one directly. */
        rc = wbFlush(p);
        if (rc != SQLITE_OK) return rc;
        WB_ADD(gWritesDirect, 1);
        return p->pReal->pMethods->xWrite(p->pReal, z, n, off);
      }
      p->aBuf = a;
      p->nAlloc = want;
    }
    memcpy(p->aBuf + p->nBuf, z, n);
    p->nBuf += n;
    WB_ADD(gWritesAbsorbed, 1);
    return SQLITE_OK;
  }
  /* Anything else ends the run. */
  rc = wbFlush(p);
  if (rc != SQLITE_OK) return rc;
  if (n > WB_CAP) {
    WB_ADD(gWritesDirect, 1);
    return p->pReal->pMethods->xWrite(p->pReal, z, n, off);
  }
  /* Start a new run with this write. */
  if (p->nAlloc < n) {
    int want = p->nAlloc ? p->nAlloc : WB_INITIAL;
    unsigned char *a;
    while (want < n) want *= 2;
    if (want > WB_CAP) want = WB_CAP;
    a = sqlite3_realloc(p->aBuf, want);
    if (a == 0) {
      WB_ADD(gWritesDirect, 1);
      return p->pReal->pMethods->xWrite(p->pReal, z, n, off);
    }
    p->aBuf = a;
    p->nAlloc = want;
  }
  memcpy(p->aBuf, z, n);
  p->iBufOff = off;
  p->nBuf = n;
  WB_ADD(gWritesAbsorbed, 1);
  return SQLITE_OK;
}

static int wbTruncate(sqlite3_file *pFile, sqlite3_int64 size) {
  WbFile *p = (WbFile *)pFile;
  int rc = wbPre(p);
  if (rc != SQLITE_OK) return rc;
  return p->pReal->pMethods->xTruncate(p->pReal, size);
}

static int wbSync(sqlite3_file *pFile, int flags) {
  WbFile *p = (WbFile *)pFile;
  int rc = wbPre(p);
  if (rc != SQLITE_OK) return rc;
  return p->pReal->pMethods->xSync(p->pReal, flags);
}

static int wbFileSize(sqlite3_file *pFile, sqlite3_int64 *pSize) {
  WbFile *p = (WbFile *)pFile;
  int rc = wbPre(p);
  if (rc != SQLITE_OK) return rc;
  return p->pReal->pMethods->xFileSize(p->pReal, pSize);
}

static int wbLock(sqlite3_file *pFile, int e) {
  WbFile *p = (WbFile *)pFile;
  int rc = wbPre(p);
  if (rc != SQLITE_OK) return rc;
  return p->pReal->pMethods->xLock(p->pReal, e);
}

static int wbUnlock(sqlite3_file *pFile, int e) {
  WbFile *p = (WbFile *)pFile;
  int rc = wbPre(p);
  if (rc != SQLITE_OK) return rc;
  return p->pReal->pMethods->xUnlock(p->pReal, e);
}

static int wbCheckReservedLock(sqlite3_file *pFile, int *pOut) {
  WbFile *p = (WbFile *)pFile;
  int rc = wbPre(p);
  if (rc != SQLITE_OK) return rc;
  return p->pReal->pMethods->xCheckReservedLock(p->pReal, pOut);
}

static int wbFileControl(sqlite3_file *pFile, int op, void *pArg) {
  WbFile *p = (WbFile *)pFile;
  int rc = wbPre(p);
  if (rc != SQLITE_OK) return rc;
  return p->pReal->pMethods->xFileControl(p->pReal, op, pArg);
}

static int wbSectorSize(sqlite3_file *pFile) {
  WbFile *p = (WbFile *)pFile;
  return p->pReal->pMethods->xSectorSize(p->pReal);
}

static int wbDeviceCharacteristics(sqlite3_file *pFile) {
  WbFile *p = (WbFile *)pFile;
  return p->pReal->pMethods->xDeviceCharacteristics(p->pReal);
}

static int wbShmMap(sqlite3_file *pFile, int iPg, int pgsz, int bExtend, void volatile **pp) {
  WbFile *p = (WbFile *)pFile;
  return p->pReal->pMethods->xShmMap(p->pReal, iPg, pgsz, bExtend, pp);
}

/* Lock changes on the wal-index: flush first (point 3 of the header: a writer releasing
** WAL_WRITE_LOCK has nothing left in its buffer). The lock call happens whatever the flush did. */
static int wbShmLock(sqlite3_file *pFile, int offset, int n, int flags) {
  WbFile *p = (WbFile *)pFile;
  int rc = p->isWal ? SQLITE_OK : wbFlushPeerWal(p);
  int rc2 = p->pReal->pMethods->xShmLock(p->pReal, offset, n, flags);
  if (flags & SQLITE_SHM_UNLOCK) return rc2;
  return rc2 != SQLITE_OK ? rc2 : rc;
}

/* Called by walIndexWriteHdr between the two copies of the header: the frames it is about to
** publish must be in the file first (point 2 of the header). */
static void wbShmBarrier(sqlite3_file *pFile) {
  WbFile *p = (WbFile *)pFile;
  if (!p->isWal && wbFlushPeerWal(p) != SQLITE_OK) {
    fprintf(stderr, "magpie-walbuf: writing the WAL failed before a commit was published; aborting\n");
    abort();
  }
  p->pReal->pMethods->xShmBarrier(p->pReal);
}

static int wbShmUnmap(sqlite3_file *pFile, int deleteFlag) {
  WbFile *p = (WbFile *)pFile;
  int rc = p->isWal ? SQLITE_OK : wbFlushPeerWal(p);
  int rc2 = p->pReal->pMethods->xShmUnmap(p->pReal, deleteFlag);
  return rc2 != SQLITE_OK ? rc2 : rc;
}

static int wbFetch(sqlite3_file *pFile, sqlite3_int64 off, int n, void **pp) {
  WbFile *p = (WbFile *)pFile;
  int rc = wbPre(p);
  if (rc != SQLITE_OK) return rc;
  return p->pReal->pMethods->xFetch(p->pReal, off, n, pp);
}

static int wbUnfetch(sqlite3_file *pFile, sqlite3_int64 off, void *ptr) {
  WbFile *p = (WbFile *)pFile;
  return p->pReal->pMethods->xUnfetch(p->pReal, off, ptr);
}

static const sqlite3_io_methods wb_io_methods = {
  3, wbClose, wbRead, wbWrite, wbTruncate, wbSync, wbFileSize, wbLock, wbUnlock,
  wbCheckReservedLock, wbFileControl, wbSectorSize, wbDeviceCharacteristics,
  wbShmMap, wbShmLock, wbShmBarrier, wbShmUnmap, wbFetch, wbUnfetch,
};

static int wbOpen(sqlite3_vfs *pVfs, sqlite3_filename zName, sqlite3_file *pFile, int flags, int *pOutFlags) {
  WbFile *p = (WbFile *)pFile;
  int wrapDb = (flags & SQLITE_OPEN_MAIN_DB) != 0;
  int wrapWal = (flags & SQLITE_OPEN_WAL) != 0 && __atomic_load_n(&gEnabled, __ATOMIC_RELAXED);
  int rc;
  (void)pVfs;
  /* Journals, temp files (and WAL files while disabled): the real VFS's file, as is. The
  ** zName pointer is passed unchanged (sqlite3_uri_parameter and friends rely on it). */
  if (!wrapDb && !wrapWal) return gReal->xOpen(gReal, zName, pFile, flags, pOutFlags);
  memset(p, 0, sizeof(*p));
  p->pReal = (sqlite3_file *)&p[1];
  rc = gReal->xOpen(gReal, zName, p->pReal, flags, pOutFlags);
  if (rc != SQLITE_OK || p->pReal->pMethods == 0) {
    p->base.pMethods = 0;
    return rc;
  }
  p->base.pMethods = &wb_io_methods;
  if (wrapWal) {
    sqlite3_file *pDb = sqlite3_database_file_object(zName);
    p->isWal = 1;
    WB_ADD(gWalOpens, 1);
    /* Link to the database file of the same pager (only if it is one of ours). */
    if (pDb && pDb->pMethods == &wb_io_methods) {
      WbFile *d = (WbFile *)pDb;
      if (d->pPeer) d->pPeer->pPeer = 0;
      d->pPeer = p;
      p->pPeer = d;
    }
  }
  return SQLITE_OK;
}

/* The rest of the VFS: the real one's, called with the real VFS object. */
static int wbDelete(sqlite3_vfs *v, const char *z, int syncDir) { (void)v; return gReal->xDelete(gReal, z, syncDir); }
static int wbAccess(sqlite3_vfs *v, const char *z, int f, int *pOut) { (void)v; return gReal->xAccess(gReal, z, f, pOut); }
static int wbFullPathname(sqlite3_vfs *v, const char *z, int n, char *zOut) { (void)v; return gReal->xFullPathname(gReal, z, n, zOut); }
static void *wbDlOpen(sqlite3_vfs *v, const char *z) { (void)v; return gReal->xDlOpen(gReal, z); }
static void wbDlError(sqlite3_vfs *v, int n, char *z) { (void)v; gReal->xDlError(gReal, n, z); }
static void (*wbDlSym(sqlite3_vfs *v, void *h, const char *z))(void) { (void)v; return gReal->xDlSym(gReal, h, z); }
static void wbDlClose(sqlite3_vfs *v, void *h) { (void)v; gReal->xDlClose(gReal, h); }
static int wbRandomness(sqlite3_vfs *v, int n, char *z) { (void)v; return gReal->xRandomness(gReal, n, z); }
static int wbSleep(sqlite3_vfs *v, int us) { (void)v; return gReal->xSleep(gReal, us); }
static int wbCurrentTime(sqlite3_vfs *v, double *pT) { (void)v; return gReal->xCurrentTime(gReal, pT); }
static int wbGetLastError(sqlite3_vfs *v, int n, char *z) { (void)v; return gReal->xGetLastError(gReal, n, z); }
static int wbCurrentTimeInt64(sqlite3_vfs *v, sqlite3_int64 *pT) { (void)v; return gReal->xCurrentTimeInt64(gReal, pT); }
static int wbSetSystemCall(sqlite3_vfs *v, const char *z, sqlite3_syscall_ptr f) { (void)v; return gReal->xSetSystemCall(gReal, z, f); }
static sqlite3_syscall_ptr wbGetSystemCall(sqlite3_vfs *v, const char *z) { (void)v; return gReal->xGetSystemCall(gReal, z); }
static const char *wbNextSystemCall(sqlite3_vfs *v, const char *z) { (void)v; return gReal->xNextSystemCall(gReal, z); }

/* magpie_walbuf_stats(): the process's counters as JSON. */
static void wbStatsFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  char *z;
  (void)argc;
  (void)argv;
  z = sqlite3_mprintf(
      "{\"enabled\":%d,\"walOpens\":%lld,\"writesAbsorbed\":%lld,\"writesDirect\":%lld,\"flushes\":%lld,\"flushWrites\":%lld,\"flushedBytes\":%lld,\"flushErrors\":%lld}",
      __atomic_load_n(&gEnabled, __ATOMIC_RELAXED), WB_GET(gWalOpens), WB_GET(gWritesAbsorbed), WB_GET(gWritesDirect),
      WB_GET(gFlushes), WB_GET(gFlushWrites), WB_GET(gFlushedBytes), WB_GET(gFlushErrors));
  if (z == 0) {
    sqlite3_result_error_nomem(ctx);
    return;
  }
  sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

/* magpie_walbuf_enable(on): buffer WAL files opened from now on (1) or not (0). Returns the new state. */
static void wbEnableFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv) {
  int on = sqlite3_value_int(argv[0]) != 0;
  (void)argc;
  __atomic_store_n(&gEnabled, on, __ATOMIC_RELAXED);
  sqlite3_result_int(ctx, on);
}

static int wbRegisterFunctions(sqlite3 *db) {
  int rc = sqlite3_create_function(db, "magpie_walbuf_stats", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY, 0, wbStatsFunc, 0, 0);
  if (rc == SQLITE_OK) rc = sqlite3_create_function(db, "magpie_walbuf_enable", 1, SQLITE_UTF8 | SQLITE_DIRECTONLY, 0, wbEnableFunc, 0, 0);
  return rc;
}

/* Run for every connection opened after the first load (auto-extension): the SQL functions. */
static int wbAutoInit(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
  (void)pzErrMsg;
  (void)pApi;
  return wbRegisterFunctions(db);
}

#ifdef _WIN32
__declspec(dllexport)
#endif
/* The entry point (db.loadExtension(path) finds it by the file's name: sqlite3_walbuf_init).
** Idempotent: a second load (another worker thread) only registers the functions on its
** connection. Returns SQLITE_OK_LOAD_PERMANENTLY: the VFS lives in this library, which must
** stay mapped after the loading connection closes. */
int sqlite3_walbuf_init(sqlite3 *db, char **pzErrMsg, const sqlite3_api_routines *pApi) {
  int rc = SQLITE_OK;
  sqlite3_mutex *m;
  SQLITE_EXTENSION_INIT2(pApi);
  /* Threads may load it at the same time: register once, under a static mutex. */
  m = sqlite3_mutex_alloc(SQLITE_MUTEX_STATIC_APP1);
  sqlite3_mutex_enter(m);
  if (sqlite3_vfs_find("magpie-walbuf") == 0) {
    sqlite3_vfs *real = sqlite3_vfs_find(0);
    if (real == 0 || real->iVersion < 3) {
      *pzErrMsg = sqlite3_mprintf("magpie-walbuf: no default VFS of version 3 to wrap");
      sqlite3_mutex_leave(m);
      return SQLITE_ERROR;
    }
    gReal = real;
    memset(&gVfs, 0, sizeof(gVfs));
    gVfs.iVersion = 3;
    gVfs.szOsFile = (int)sizeof(WbFile) + real->szOsFile;
    gVfs.mxPathname = real->mxPathname;
    gVfs.zName = "magpie-walbuf";
    gVfs.xOpen = wbOpen;
    gVfs.xDelete = wbDelete;
    gVfs.xAccess = wbAccess;
    gVfs.xFullPathname = wbFullPathname;
    gVfs.xDlOpen = wbDlOpen;
    gVfs.xDlError = wbDlError;
    gVfs.xDlSym = wbDlSym;
    gVfs.xDlClose = wbDlClose;
    gVfs.xRandomness = wbRandomness;
    gVfs.xSleep = wbSleep;
    gVfs.xCurrentTime = wbCurrentTime;
    gVfs.xGetLastError = wbGetLastError;
    gVfs.xCurrentTimeInt64 = wbCurrentTimeInt64;
    gVfs.xSetSystemCall = wbSetSystemCall;
    gVfs.xGetSystemCall = wbGetSystemCall;
    gVfs.xNextSystemCall = wbNextSystemCall;
    rc = sqlite3_vfs_register(&gVfs, 1);
    if (rc == SQLITE_OK) rc = sqlite3_auto_extension((void (*)(void))wbAutoInit);
  }
  sqlite3_mutex_leave(m);
  if (rc == SQLITE_OK) rc = wbRegisterFunctions(db);
  return rc == SQLITE_OK ? SQLITE_OK_LOAD_PERMANENTLY : rc;
}
