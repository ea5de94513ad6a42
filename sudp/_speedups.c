/*
 * sudp._speedups: the per-datagram loops of the sudp/1 data path in C.
 *
 * Optional: sudp works without it (sudp/speedups.py picks the pure-Python
 * code when this module is missing or SUDP_NO_SPEEDUPS is set), and the
 * tests run both. It holds no cryptography: packets are opened by the
 * session's own IPacketCipher (cryptography's or PyNaCl's AEAD), called
 * from here, or by the native Cipher below, which calls OpenSSL. What it does in C:
 *
 *   Window     the replay window (RFC 6479: a ring of 64-bit words), with
 *              the semantics of sudp.udp.replay.ReplayWindow.
 *   DataPath   the receive loop for DATA packets of open sessions: parse
 *              the header, find the session, check the window, call the
 *              epoch's opener, commit the window, queue MessageReceived.
 *              It stops at the first datagram that is not that common
 *              case, which the Python engine then handles, so the
 *              protocol's logic has one home and order is kept. Of a
 *              session it reads only its receive state
 *              (sudp/udp/receivestate.py: SESSION_FIELD, then
 *              RECEIVE_STATE_FIELDS, and EPOCH_FIELDS of each epoch), the
 *              names this module exports under those three names.
 *              Its send half (send, sendMany) seals DATA packets of open
 *              sessions with the native Cipher into the engine's outbox,
 *              and leaves every other case (a rekey to start, a key near
 *              its limit, an address being validated, a plugin suite) to
 *              the session's own sendMessage; it reads only
 *              SEND_SESSION_FIELDS and SEND_EPOCH_FIELDS
 *              (sudp/udp/sendstate.py) and the receive state's state,
 *              probe, peerAddr and stats.
 *   Receiver   recvmmsg(2): many datagrams per system call, each GRO read
 *              cut at its segment size (Linux).
 *   sendBatch  sendmmsg(2): datagrams to many addresses in one system
 *              call, runs to one address as GSO segmented sends (Linux).
 *   Cipher     (built with OpenSSL's headers: SUDP_EVP) the packet cipher
 *              of the two built-in AEAD suites, chacha20-poly1305 and
 *              aes-256-gcm, on OpenSSL's EVP interface as aioquic's
 *              _crypto.c calls it: a context per direction keyed once,
 *              re-armed with each packet's nonce (4 zero bytes | seq64) and
 *              the header as associated data. The same object serves the
 *              Python code (seal, open) and DataPath, which opens with it
 *              in C with no Python call per packet. The cryptography is
 *              OpenSSL's; this only calls it.
 */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>

#ifdef __linux__
#define SUDP_MMSG 1
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/uio.h>
#ifndef SOL_UDP
#define SOL_UDP 17
#endif
#ifndef UDP_GRO
#define UDP_GRO 104
#endif
#endif

#ifdef SUDP_EVP
#include <openssl/crypto.h>
#include <openssl/evp.h>
#endif

#define DATA_HEADER_SIZE 13
#define TAG_SIZE 16

static PyObject *one; /* the int 1 */

static int
asInt(PyObject *v)
{
    long x = PyLong_AsLong(v);
    if (x == -1 && PyErr_Occurred())
        return -1;
    if (x < INT_MIN || x > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "out of range for a C int");
        return -1;
    }
    return (int)x;
}

static inline uint32_t
be32(const unsigned char *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) | ((uint32_t)p[2] << 8) | p[3];
}

static inline uint64_t
be64(const unsigned char *p)
{
    return ((uint64_t)be32(p) << 32) | be32(p + 4);
}

/* ------------------------------------------------------------------------ */
/* Window                                                                    */
/* ------------------------------------------------------------------------ */

typedef struct {
    PyObject_HEAD
    uint64_t highest;
    int any;        /* 0 until the first commit: highest is -1 */
    int strict;
    uint64_t size;  /* sequence numbers remembered: (highest - size, highest] */
    uint64_t nwords;
    uint64_t *words;
} WindowObject;

static PyTypeObject WindowType;

static inline int
window_check(WindowObject *w, uint64_t seq)
{
    if (!w->any || seq > w->highest)
        return 1;
    if (w->strict)
        return 0;
    if (w->highest - seq >= w->size)
        return 0;
    return !((w->words[(seq >> 6) % w->nwords] >> (seq & 63)) & 1);
}

static inline void
window_commit(WindowObject *w, uint64_t seq)
{
    if (!w->any || seq > w->highest) {
        uint64_t newWord = seq >> 6;
        if (!w->any || newWord - (w->highest >> 6) >= w->nwords) {
            memset(w->words, 0, w->nwords * sizeof(uint64_t));
        }
        else {
            uint64_t k, oldWord = w->highest >> 6;
            for (k = oldWord + 1; k <= newWord; k++)
                w->words[k % w->nwords] = 0;
        }
        w->highest = seq;
        w->any = 1;
    }
    else if (w->highest - seq >= w->size) {
        return; /* older than the window: never read again */
    }
    w->words[(seq >> 6) % w->nwords] |= (uint64_t)1 << (seq & 63);
}

static int
Window_init(WindowObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"size", "strict", NULL};
    Py_ssize_t size = 2048;
    int strict = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|np", kwlist, &size, &strict))
        return -1;
    if (size < 64) {
        PyErr_SetString(PyExc_ValueError, "the replay window is at least 64 packets");
        return -1;
    }
    if (size > (1 << 24)) {
        PyErr_SetString(PyExc_ValueError, "the replay window is at most 2**24 packets");
        return -1;
    }
    PyMem_Free(self->words);
    self->size = (uint64_t)size;
    self->nwords = (uint64_t)size / 64 + 2;
    self->words = PyMem_Calloc(self->nwords, sizeof(uint64_t));
    if (self->words == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->strict = strict;
    self->any = 0;
    self->highest = 0;
    return 0;
}

static void
Window_dealloc(WindowObject *self)
{
    PyMem_Free(self->words);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
seqArg(PyObject *arg, uint64_t *seq)
{
    unsigned long long v = PyLong_AsUnsignedLongLong(arg);
    if (v == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *seq = (uint64_t)v;
    return 0;
}

/* Every method refuses an object whose __init__ never ran (or failed): its
   ring is NULL and has no words, and indexing it would crash the process. */
static int
window_ready(WindowObject *self)
{
    if (self->words == NULL || self->nwords == 0) {
        PyErr_SetString(PyExc_RuntimeError, "this Window is not initialised (call Window(size, strict))");
        return 0;
    }
    return 1;
}

static PyObject *
Window_check(WindowObject *self, PyObject *arg)
{
    uint64_t seq;
    if (!window_ready(self) || seqArg(arg, &seq) < 0)
        return NULL;
    return PyBool_FromLong(window_check(self, seq));
}

static PyObject *
Window_commit(WindowObject *self, PyObject *arg)
{
    uint64_t seq;
    if (!window_ready(self) || seqArg(arg, &seq) < 0)
        return NULL;
    window_commit(self, seq);
    Py_RETURN_NONE;
}

static PyObject *
Window_state(WindowObject *self, PyObject *unused)
{
    /* (highest, bits): bit i set when highest - i has been seen, i < size */
    PyObject *bits, *index = NULL, *shifted = NULL, *result = NULL;
    uint64_t i;
    if (!window_ready(self))
        return NULL;
    bits = PyLong_FromLong(0);
    if (bits == NULL)
        return NULL;
    if (self->any) {
        for (i = 0; i < self->size && i <= self->highest; i++) {
            uint64_t seq = self->highest - i;
            if (!((self->words[(seq >> 6) % self->nwords] >> (seq & 63)) & 1))
                continue;
            index = PyLong_FromUnsignedLongLong(i);
            if (index == NULL)
                goto done;
            shifted = PyNumber_Lshift(one, index);
            Py_CLEAR(index);
            if (shifted == NULL)
                goto done;
            Py_SETREF(bits, PyNumber_Or(bits, shifted));
            Py_CLEAR(shifted);
            if (bits == NULL)
                goto done;
        }
    }
    if (self->any)
        result = Py_BuildValue("(KO)", (unsigned long long)self->highest, bits);
    else
        result = Py_BuildValue("(iO)", -1, bits);
done:
    Py_XDECREF(bits);
    return result;
}

static PyObject *
Window_getHighest(WindowObject *self, void *closure)
{
    if (!self->any)
        return PyLong_FromLong(-1);
    return PyLong_FromUnsignedLongLong(self->highest);
}

static PyObject *
Window_getSize(WindowObject *self, void *closure)
{
    return PyLong_FromUnsignedLongLong(self->size);
}

static PyObject *
Window_getStrict(WindowObject *self, void *closure)
{
    return PyBool_FromLong(self->strict);
}

static PyMethodDef Window_methods[] = {
    {"check", (PyCFunction)Window_check, METH_O,
     "check(sequence) -> True if it has not been seen and is not too old. Changes nothing."},
    {"commit", (PyCFunction)Window_commit, METH_O,
     "commit(sequence): mark it seen. Call only for an authenticated packet that passed check()."},
    {"state", (PyCFunction)Window_state, METH_NOARGS,
     "state() -> (highest, bits): bit i set when highest - i has been seen."},
    {NULL}};

static PyGetSetDef Window_getset[] = {
    {"highest", (getter)Window_getHighest, NULL, "the highest committed sequence number, -1 before any", NULL},
    {"size", (getter)Window_getSize, NULL, "how many sequence numbers below the highest are remembered", NULL},
    {"strict", (getter)Window_getStrict, NULL, "the UDP whitepaper's strictly-greater rule", NULL},
    {NULL}};

static PyTypeObject WindowType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sudp._speedups.Window",
    .tp_doc = "Window(size=2048, strict=False): the sliding replay window, in C.",
    .tp_basicsize = sizeof(WindowObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Window_init,
    .tp_dealloc = (destructor)Window_dealloc,
    .tp_methods = Window_methods,
    .tp_getset = Window_getset,
};

/* ------------------------------------------------------------------------ */
/* DataPath                                                                  */
/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------ */
/* Cipher (OpenSSL EVP)                                                      */
/* ------------------------------------------------------------------------ */

#ifdef SUDP_EVP

typedef struct {
    PyObject_HEAD
    EVP_CIPHER_CTX *sealer, *opener; /* each keyed on first use: an epoch seals with one object, opens with another */
    const EVP_CIPHER *cipher;
    const char *algorithm; /* a static string: "chacha20-poly1305" or "aes-256-gcm"; NULL before keying */
    unsigned char key[32];
} CipherObject;

static PyTypeObject CipherType;
static PyObject *malformedPacket; /* sudp.errors.MalformedPacket, set by setMalformedPacket */

static void
Cipher_free(CipherObject *self)
{
    EVP_CIPHER_CTX_free(self->sealer); /* frees and wipes the key schedule */
    EVP_CIPHER_CTX_free(self->opener);
    self->sealer = self->opener = NULL;
    OPENSSL_cleanse(self->key, sizeof(self->key));
    self->algorithm = NULL;
}

/* A context of self's cipher and key, for sealing (enc 1) or opening (0); NULL with a Python error. */
static EVP_CIPHER_CTX *
newContext(CipherObject *self, int enc)
{
    EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
    if (ctx != NULL && EVP_CipherInit_ex(ctx, self->cipher, NULL, NULL, NULL, enc)
        && EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_AEAD_SET_IVLEN, 12, NULL)
        && EVP_CipherInit_ex(ctx, NULL, NULL, self->key, NULL, enc))
        return ctx;
    EVP_CIPHER_CTX_free(ctx);
    PyErr_SetString(PyExc_RuntimeError, "OpenSSL: keying the cipher failed");
    return NULL;
}

static int
sslError(const char *what)
{
    PyErr_Format(PyExc_RuntimeError, "OpenSSL: %s failed", what);
    return -1;
}

static int
Cipher_init(CipherObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"algorithm", "key", NULL};
    const char *algorithm;
    Py_buffer key;
    const EVP_CIPHER *cipher;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "sy*", kwlist, &algorithm, &key))
        return -1;
    if (strcmp(algorithm, "chacha20-poly1305") == 0) {
        cipher = EVP_chacha20_poly1305();
        algorithm = "chacha20-poly1305";
    } else if (strcmp(algorithm, "aes-256-gcm") == 0) {
        cipher = EVP_aes_256_gcm();
        algorithm = "aes-256-gcm";
    } else {
        PyBuffer_Release(&key);
        PyErr_Format(PyExc_ValueError, "no native cipher for %s (chacha20-poly1305 or aes-256-gcm)", algorithm);
        return -1;
    }
    if (key.len != 32) {
        PyBuffer_Release(&key);
        PyErr_SetString(PyExc_ValueError, "the key is 32 bytes");
        return -1;
    }
    Cipher_free(self);
    self->cipher = cipher;
    memcpy(self->key, key.buf, sizeof(self->key));
    PyBuffer_Release(&key);
    self->algorithm = algorithm;
    return 0;
}

static void
Cipher_dealloc(CipherObject *self)
{
    Cipher_free(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* Write the low n bytes of v at p, big-endian (the wire's order). */
static inline void
putBigEndian(unsigned char *p, uint64_t v, int n)
{
    int k;
    for (k = 0; k < n; k++)
        p[k] = (unsigned char)(v >> (8 * (n - 1 - k)));
}

static inline void
packetNonce(unsigned char nonce[12], uint64_t seq)
{
    memset(nonce, 0, 4);
    putBigEndian(nonce + 4, seq, 8);
}

static int
cipher_ready(CipherObject *self)
{
    if (self->algorithm == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this Cipher is not keyed (call Cipher(algorithm, key))");
        return 0;
    }
    return 1;
}

/*
 * Open ct (ctlen bytes: ciphertext || tag) into out (ctlen - 16 bytes).
 * Returns 1 if it authenticates, 0 if not (out is then garbage), -1 on an
 * OpenSSL failure (a Python exception is set).
 */
static int
cipher_open(CipherObject *c, uint64_t seq, const unsigned char *aad, size_t aadlen, const unsigned char *ct,
            size_t ctlen, unsigned char *out)
{
    unsigned char nonce[12];
    int len = 0, fin = 0;
    size_t ptlen;
    if (ctlen < TAG_SIZE)
        return 0;
    if (c->opener == NULL && (!cipher_ready(c) || (c->opener = newContext(c, 0)) == NULL))
        return -1;
    ptlen = ctlen - TAG_SIZE;
    if (ptlen > INT_MAX || aadlen > INT_MAX)
        return 0;
    packetNonce(nonce, seq);
    if (!EVP_DecryptInit_ex(c->opener, NULL, NULL, NULL, nonce)
        || !EVP_DecryptUpdate(c->opener, NULL, &len, aad, (int)aadlen)
        || !EVP_DecryptUpdate(c->opener, out, &len, ct, (int)ptlen)
        || !EVP_CIPHER_CTX_ctrl(c->opener, EVP_CTRL_AEAD_SET_TAG, TAG_SIZE, (void *)(ct + ptlen)))
        return sslError("opening");
    return EVP_DecryptFinal_ex(c->opener, out + len, &fin) > 0 ? 1 : 0;
}

static int
cipher_seal(CipherObject *c, uint64_t seq, const unsigned char *aad, size_t aadlen, const unsigned char *pt,
            size_t ptlen, unsigned char *out)
{
    unsigned char nonce[12];
    int len = 0, fin = 0;
    if (ptlen > INT_MAX - TAG_SIZE || aadlen > INT_MAX) {
        PyErr_SetString(PyExc_OverflowError, "too long to seal");
        return -1;
    }
    if (c->sealer == NULL && (!cipher_ready(c) || (c->sealer = newContext(c, 1)) == NULL))
        return -1;
    packetNonce(nonce, seq);
    if (!EVP_EncryptInit_ex(c->sealer, NULL, NULL, NULL, nonce)
        || !EVP_EncryptUpdate(c->sealer, NULL, &len, aad, (int)aadlen)
        || !EVP_EncryptUpdate(c->sealer, out, &len, pt, (int)ptlen)
        || !EVP_EncryptFinal_ex(c->sealer, out + len, &fin)
        || !EVP_CIPHER_CTX_ctrl(c->sealer, EVP_CTRL_AEAD_GET_TAG, TAG_SIZE, out + ptlen))
        return sslError("sealing");
    return 0;
}

static int
parseSequence(PyObject *v, uint64_t *seq)
{
    unsigned long long x = PyLong_AsUnsignedLongLong(v);
    if (x == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *seq = (uint64_t)x;
    return 0;
}

static PyObject *
Cipher_seal(CipherObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t seq;
    Py_buffer aad, pt;
    PyObject *out;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "seal(sequence, header, plaintext)");
        return NULL;
    }
    if (!cipher_ready(self) || parseSequence(args[0], &seq) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &aad, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[2], &pt, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&aad);
        return NULL;
    }
    out = PyBytes_FromStringAndSize(NULL, pt.len + TAG_SIZE);
    if (out != NULL && cipher_seal(self, seq, aad.buf, (size_t)aad.len, pt.buf, (size_t)pt.len,
                                   (unsigned char *)PyBytes_AS_STRING(out)) < 0)
        Py_CLEAR(out);
    PyBuffer_Release(&aad);
    PyBuffer_Release(&pt);
    return out;
}

static PyObject *
badTag(void)
{
    if (malformedPacket == NULL)
        PyErr_SetString(PyExc_ValueError, "bad-tag");
    else {
        PyObject *e = PyObject_CallFunction(malformedPacket, "s", "bad-tag");
        if (e != NULL) {
            PyErr_SetObject(malformedPacket, e);
            Py_DECREF(e);
        }
    }
    return NULL;
}

static PyObject *
Cipher_open(CipherObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    uint64_t seq;
    Py_buffer aad, ct;
    PyObject *out = NULL;
    int r;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "open(sequence, header, ciphertext)");
        return NULL;
    }
    if (!cipher_ready(self) || parseSequence(args[0], &seq) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[1], &aad, PyBUF_SIMPLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[2], &ct, PyBUF_SIMPLE) < 0) {
        PyBuffer_Release(&aad);
        return NULL;
    }
    if (ct.len < TAG_SIZE)
        r = 0;
    else {
        out = PyBytes_FromStringAndSize(NULL, ct.len - TAG_SIZE);
        r = out == NULL ? -1
                        : cipher_open(self, seq, aad.buf, (size_t)aad.len, ct.buf, (size_t)ct.len,
                                      (unsigned char *)PyBytes_AS_STRING(out));
    }
    PyBuffer_Release(&aad);
    PyBuffer_Release(&ct);
    if (r == 1)
        return out;
    Py_XDECREF(out);
    return r == 0 ? badTag() : NULL;
}

static PyObject *
Cipher_getAlgorithm(CipherObject *self, void *closure)
{
    if (self->algorithm == NULL)
        Py_RETURN_NONE;
    return PyUnicode_FromString(self->algorithm);
}

static PyMethodDef Cipher_methods[] = {
    {"seal", (PyCFunction)(void (*)(void))Cipher_seal, METH_FASTCALL,
     "seal(sequence, header, plaintext) -> ciphertext || tag: nonce 4 zero bytes | sequence (u64), "
     "the header as associated data."},
    {"open", (PyCFunction)(void (*)(void))Cipher_open, METH_FASTCALL,
     "open(sequence, header, ciphertext) -> plaintext; raises MalformedPacket('bad-tag') if it does "
     "not authenticate."},
    {NULL}};

static PyGetSetDef Cipher_getset[] = {
    {"algorithm", (getter)Cipher_getAlgorithm, NULL, "chacha20-poly1305 or aes-256-gcm (None before it is keyed)",
     NULL},
    {NULL}};

static PyTypeObject CipherType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sudp._speedups.Cipher",
    .tp_doc = "Cipher(algorithm, key): the packet cipher of a built-in AEAD suite on OpenSSL's EVP; algorithm is "
              "chacha20-poly1305 or aes-256-gcm, key 32 bytes.",
    .tp_basicsize = sizeof(CipherObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Cipher_init,
    .tp_dealloc = (destructor)Cipher_dealloc,
    .tp_methods = Cipher_methods,
    .tp_getset = Cipher_getset,
};

static PyObject *
setMalformedPacket(PyObject *module, PyObject *cls)
{
    Py_INCREF(cls);
    Py_XSETREF(malformedPacket, cls);
    Py_RETURN_NONE;
}

#endif /* SUDP_EVP */

/* The names read of a session (sudp/udp/receivestate.py): its receive
   state, then only that object's fields and its epochs' fields. */
static PyObject *s_receiveState, *s_probe, *s_state, *s_epochs, *s_peerAddr, *s_minimumPacket, *s_stats, *s_heard,
    *s_opener, *s_window, *s_lastRecv, *s_sink, *s_open, *s_received;
/* The names the send half reads and writes (sudp/udp/sendstate.py). */
static PyObject *s_sendEpoch, *s_remoteIndex, *s_maxMessageSize, *s_rekeyAfterMessages, *s_rejectAfterMessages,
    *s_lastSend, *s_sealer, *s_sendSeq, *s_number, *s_sent, *s_events;

/*
 * Fast access to the __slots__ fields named above. A slot is a member
 * descriptor at a fixed offset in its object; found once per type (and
 * again whenever the type is modified: its version tag changes), it is
 * then read and written at that offset, as the interpreter's own
 * specialised attribute access does, instead of through the generic
 * attribute lookup. Anything else (no such slot, a property, an unset
 * slot, a subclass of another layout) takes PyObject_GetAttr/SetAttr.
 */
typedef struct {
    PyTypeObject *type; /* compared only, with its version tag */
    unsigned int tag;
    Py_ssize_t offset;
} SlotRef;

static int
slotFind(PyObject *obj, PyObject *name, SlotRef *ref)
{
    PyTypeObject *type = Py_TYPE(obj);
    PyObject *d = _PyType_Lookup(type, name); /* borrowed; gives the type a version tag */
    PyMemberDef *m;
    ref->type = NULL;
    if (d == NULL || !Py_IS_TYPE(d, &PyMemberDescr_Type))
        return 0;
    m = ((PyMemberDescrObject *)d)->d_member;
    if (m->type != T_OBJECT_EX || (m->flags & READONLY) || m->offset <= 0
        || !(type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG))
        return 0;
    ref->type = type;
    ref->tag = type->tp_version_tag;
    ref->offset = m->offset;
    return 1;
}

static inline int
slotHit(PyObject *obj, SlotRef *ref)
{
    PyTypeObject *type = Py_TYPE(obj);
    return type == ref->type && (type->tp_flags & Py_TPFLAGS_VALID_VERSION_TAG) && type->tp_version_tag == ref->tag;
}

/* obj.name as a new reference, or NULL with an exception. */
static PyObject *
slotGet(PyObject *obj, PyObject *name, SlotRef *ref)
{
    if (slotHit(obj, ref) || slotFind(obj, name, ref)) {
        PyObject *v = *(PyObject **)((char *)obj + ref->offset);
        if (v != NULL) {
            Py_INCREF(v);
            return v;
        }
    }
    return PyObject_GetAttr(obj, name); /* and its AttributeError for an unset slot */
}

/* obj.name = value; 0, or -1 with an exception. */
static int
slotSet(PyObject *obj, PyObject *name, PyObject *value, SlotRef *ref)
{
    if (slotHit(obj, ref) || slotFind(obj, name, ref)) {
        PyObject **p = (PyObject **)((char *)obj + ref->offset), *old = *p;
        Py_INCREF(value);
        *p = value;
        Py_XDECREF(old);
        return 0;
    }
    return PyObject_SetAttr(obj, name, value);
}

static SlotRef r_receiveState, r_probe, r_state, r_epochs, r_peerAddr, r_minimumPacket, r_stats, r_heard, r_opener,
    r_window, r_lastRecv, r_sink, r_sendEpoch, r_remoteIndex, r_maxMessageSize, r_rekeyAfterMessages,
    r_rejectAfterMessages, r_lastSend, r_sealer, r_sendSeq, r_number;

#define GETSLOT(obj, name) slotGet((obj), s_##name, &r_##name)
#define SETSLOT(obj, name, value) slotSet((obj), s_##name, (value), &r_##name)

/* obj.name, a non-negative int, into *out: 0, or -1 with an exception. */
static int
slotCount(PyObject *obj, PyObject *name, SlotRef *ref, unsigned long long *out)
{
    PyObject *v = slotGet(obj, name, ref);
    if (v == NULL)
        return -1;
    *out = PyLong_AsUnsignedLongLong(v);
    Py_DECREF(v);
    return *out == (unsigned long long)-1 && PyErr_Occurred() ? -1 : 0;
}

/* Is obj.name the object expected? 1 or 0, or -1 with an exception. */
static int
slotIs(PyObject *obj, PyObject *name, SlotRef *ref, PyObject *expected)
{
    PyObject *v = slotGet(obj, name, ref);
    if (v == NULL)
        return -1;
    Py_DECREF(v);
    return v == expected;
}

#define GETCOUNT(obj, name, out) slotCount((obj), s_##name, &r_##name, (out))
#define SLOTIS(obj, name, expected) slotIs((obj), s_##name, &r_##name, (expected))

static int
incrementCount(PyObject *stats, PyObject *key)
{
    PyObject *count = PyDict_GetItemWithError(stats, key);
    int r;
    if (count == NULL) {
        if (!PyErr_Occurred())
            PyErr_SetObject(PyExc_KeyError, key);
        return -1;
    }
    count = PyNumber_Add(count, one);
    if (count == NULL)
        return -1;
    r = PyDict_SetItem(stats, key, count);
    Py_DECREF(count);
    return r;
}

typedef struct {
    PyObject_HEAD
    PyObject *sessions;        /* index -> Session */
    PyObject *messageReceived; /* the event class */
    PyObject *malformed;       /* MalformedPacket: an open that fails */
    PyObject *openState;       /* the OPEN marker object */
    PyObject *deliveryFailed;  /* the event class for a sink that raised, or NULL: sinks unused */
    Py_ssize_t maxDatagram;
} DataPathObject;

static int
DataPath_init(DataPathObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"sessions", "messageReceived", "malformed", "openState", "maxDatagram",
                             "deliveryFailed", NULL};
    PyObject *sessions, *messageReceived, *malformed, *openState, *deliveryFailed = Py_None;
    Py_ssize_t maxDatagram;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "O!OOOn|O", kwlist, &PyDict_Type, &sessions, &messageReceived,
                                     &malformed, &openState, &maxDatagram, &deliveryFailed))
        return -1;
    if (deliveryFailed == Py_None)
        Py_CLEAR(self->deliveryFailed);
    else {
        Py_INCREF(deliveryFailed);
        Py_XSETREF(self->deliveryFailed, deliveryFailed);
    }
    Py_INCREF(sessions);
    Py_XSETREF(self->sessions, sessions);
    Py_INCREF(messageReceived);
    Py_XSETREF(self->messageReceived, messageReceived);
    Py_INCREF(malformed);
    Py_XSETREF(self->malformed, malformed);
    Py_INCREF(openState);
    Py_XSETREF(self->openState, openState);
    self->maxDatagram = maxDatagram;
    return 0;
}

static void
DataPath_dealloc(DataPathObject *self)
{
    Py_XDECREF(self->sessions);
    Py_XDECREF(self->messageReceived);
    Py_XDECREF(self->malformed);
    Py_XDECREF(self->openState);
    Py_XDECREF(self->deliveryFailed);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* What one session's fast path needs, looked up once per run of its packets. */
typedef struct {
    uint32_t index;
    PyObject *session, *rx, *stats; /* rx: the session's receive state */
    Py_ssize_t minimumPacket;
    PyObject *opener[2];
    WindowObject *window[2];
} Cached;

static void
cached_clear(Cached *c)
{
    Py_CLEAR(c->session);
    Py_CLEAR(c->rx);
    Py_CLEAR(c->stats);
    Py_CLEAR(c->opener[0]);
    Py_CLEAR(c->opener[1]);
    Py_CLEAR(c->window[0]);
    Py_CLEAR(c->window[1]);
}

/*
 * Look up the session of index for a datagram from addr and fill c.
 * Returns 1 if the fast path may handle its packets, 0 if not, -1 on error.
 */
static int
cached_load(DataPathObject *self, Cached *c, uint32_t index, PyObject *addr)
{
    PyObject *key, *session, *rx, *v, *epochs = NULL;
    int same, phase, ok = 0;
    cached_clear(c);
    key = PyLong_FromUnsignedLong(index);
    if (key == NULL)
        return -1;
    session = PyDict_GetItemWithError(self->sessions, key);
    Py_DECREF(key);
    if (session == NULL)
        return PyErr_Occurred() ? -1 : 0;
    Py_INCREF(session);
    c->session = session;
    c->index = index;
    rx = c->rx = GETSLOT(session, receiveState);
    if (rx == NULL)
        goto error;

    same = SLOTIS(rx, state, self->openState);
    if (same < 0)
        goto error;
    if (!same)
        goto no;
    v = GETSLOT(rx, peerAddr);
    if (v == NULL)
        goto error;
    same = PyObject_RichCompareBool(v, addr, Py_EQ);
    Py_DECREF(v);
    if (same < 0)
        goto error;
    if (!same) /* a rebinding peer: the Python path decides */
        goto no;
    same = SLOTIS(rx, probe, Py_None);
    if (same < 0)
        goto error;
    if (!same) /* another address is being validated: the Python path watches */
        goto no;
    v = GETSLOT(rx, minimumPacket);
    if (v == NULL)
        goto error;
    c->minimumPacket = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    if (c->minimumPacket == -1 && PyErr_Occurred())
        goto error;
    c->stats = GETSLOT(rx, stats);
    if (c->stats == NULL)
        goto error;
    if (!PyDict_CheckExact(c->stats))
        goto no;
    epochs = GETSLOT(rx, epochs);
    if (epochs == NULL)
        goto error;
    if (!PyList_CheckExact(epochs) || PyList_GET_SIZE(epochs) != 2)
        goto no;
    for (phase = 0; phase < 2; phase++) {
        PyObject *epoch = PyList_GET_ITEM(epochs, phase), *opener, *window;
        if (epoch == Py_None)
            continue;
        /* only an epoch already heard from: the first packet of an epoch
           moves the session's keys (Python path) */
        same = SLOTIS(epoch, heard, Py_True);
        if (same < 0)
            goto error;
        if (!same)
            continue;
        opener = GETSLOT(epoch, opener);
        if (opener == NULL)
            goto error;
        if (opener == Py_None) { /* the cipher cache gave it back: Python re-arms it */
            Py_DECREF(opener);
            continue;
        }
        window = GETSLOT(epoch, window);
        if (window == NULL) {
            Py_DECREF(opener);
            goto error;
        }
        if (Py_TYPE(window) != &WindowType || ((WindowObject *)window)->words == NULL) {
            Py_DECREF(opener);
            Py_DECREF(window);
            continue;
        }
        c->opener[phase] = opener;
        c->window[phase] = (WindowObject *)window;
    }
    ok = 1;
no:
    Py_XDECREF(epochs);
    if (!ok)
        cached_clear(c);
    return ok;
error:
    Py_XDECREF(epochs);
    cached_clear(c);
    return -1;
}

/* Append event (a new reference, or NULL after a failure) to events: 1, or -1. */
static int
appendEvent(PyObject *events, PyObject *event)
{
    int r;
    if (event == NULL)
        return -1;
    r = PyList_Append(events, event);
    Py_DECREF(event);
    return r < 0 ? -1 : 1;
}

/*
 * Hand plaintext to the sink of c's session (its receive state's "sink").
 * Returns 0 if it has none, 1 if the sink was called (if it raised an
 * Exception, a DeliveryFailed event now carries it), -1 on error (a
 * BaseException from the sink, such as KeyboardInterrupt, propagates).
 */
static int
deliverToSink(DataPathObject *self, Cached *c, PyObject *plaintext, PyObject *events)
{
    PyObject *sink, *result, *type, *value, *tb, *event;
    sink = GETSLOT(c->rx, sink);
    if (sink == NULL)
        return -1;
    if (sink == Py_None) {
        Py_DECREF(sink);
        return 0;
    }
    result = PyObject_CallOneArg(sink, plaintext);
    Py_DECREF(sink);
    if (result != NULL) {
        Py_DECREF(result);
        return 1;
    }
    if (!PyErr_ExceptionMatches(PyExc_Exception))
        return -1;
    PyErr_Fetch(&type, &value, &tb);
    PyErr_NormalizeException(&type, &value, &tb);
    if (tb != NULL)
        PyException_SetTraceback(value, tb);
    event = PyObject_CallFunctionObjArgs(self->deliveryFailed, c->session, plaintext, value, NULL);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(tb);
    return appendEvent(events, event);
}

/* Returns 1 if c's session is still open, 0 if not, -1 on error. */
static int
stillOpen(DataPathObject *self, Cached *c)
{
    return SLOTIS(c->rx, state, self->openState);
}

/*
 * One datagram (p, len bytes, from addr) through the common case. Returns 1
 * if it was delivered: to its session's sink while events is empty (a
 * sink's Exception becomes a deliveryFailed event), else as a
 * MessageReceived in events; 0 if it is the Python path's (not DATA of an
 * open session from its address, stale, a replay, not authentic: nothing
 * was changed); -1 on error. c and *loaded cache the last session's state
 * for a datagram from addr: the caller clears *loaded when addr changes.
 */
static int
openOne(DataPathObject *self, Cached *c, int *loaded, const unsigned char *p, Py_ssize_t len, PyObject *addr,
        PyObject *now, PyObject *events)
{
    PyObject *header, *body, *seqObj, *plaintext, *event;
    uint32_t index;
    uint64_t seq;
    int phase, r;

    if (len < DATA_HEADER_SIZE || len > self->maxDatagram || (p[0] & 0xFE) != 0x18)
        return 0; /* not a DATA packet (CONTROL, handshake, junk): Python */
    index = be32(p + 1);
    seq = be64(p + 5);
    if (!*loaded || index != c->index) {
        r = cached_load(self, c, index, addr);
        if (r < 0)
            return -1;
        *loaded = r;
        if (!r)
            return 0;
    }
    phase = p[0] & 1;
    if (len < c->minimumPacket || c->opener[phase] == NULL || !window_check(c->window[phase], seq))
        return 0; /* short, no key in hand, or a replay: Python counts it */

#ifdef SUDP_EVP
    if (Py_IS_TYPE(c->opener[phase], &CipherType)) {
        /* a built-in suite: opened here, no Python call */
        if (len - DATA_HEADER_SIZE < TAG_SIZE)
            return 0;
        plaintext = PyBytes_FromStringAndSize(NULL, len - DATA_HEADER_SIZE - TAG_SIZE);
        if (plaintext == NULL)
            return -1;
        r = cipher_open((CipherObject *)c->opener[phase], seq, p, DATA_HEADER_SIZE, p + DATA_HEADER_SIZE,
                        (size_t)(len - DATA_HEADER_SIZE), (unsigned char *)PyBytes_AS_STRING(plaintext));
        if (r <= 0) {
            Py_DECREF(plaintext);
            /* 0: it does not authenticate; the Python path opens it again and counts it */
            return r;
        }
        goto opened;
    }
#endif
    header = PyBytes_FromStringAndSize((const char *)p, DATA_HEADER_SIZE);
    body = PyBytes_FromStringAndSize((const char *)p + DATA_HEADER_SIZE, len - DATA_HEADER_SIZE);
    seqObj = PyLong_FromUnsignedLongLong(seq);
    if (header == NULL || body == NULL || seqObj == NULL) {
        Py_XDECREF(header);
        Py_XDECREF(body);
        Py_XDECREF(seqObj);
        return -1;
    }
    plaintext = PyObject_CallMethodObjArgs(c->opener[phase], s_open, seqObj, header, body, NULL);
    Py_DECREF(header);
    Py_DECREF(body);
    Py_DECREF(seqObj);
    if (plaintext == NULL) {
        if (PyErr_ExceptionMatches(self->malformed)) {
            /* it does not authenticate: the Python path opens it again
               and does the accounting (drop, integrity limit) */
            PyErr_Clear();
            return 0;
        }
        return -1;
    }
#ifdef SUDP_EVP
opened:
#endif
    /* authenticated: now, and only now, state may change */
    window_commit(c->window[phase], seq);
    if (SETSLOT(c->rx, lastRecv, now) < 0 || incrementCount(c->stats, s_received) < 0) {
        Py_DECREF(plaintext);
        return -1;
    }
    if (self->deliveryFailed != NULL && PyList_GET_SIZE(events) == 0) {
        /* no event pending: straight to the session's sink, if it has one */
        r = deliverToSink(self, c, plaintext, events);
        if (r != 0) {
            Py_DECREF(plaintext);
            if (r < 0)
                return -1;
            /* the sink may have closed the session: look again before the next packet */
            r = stillOpen(self, c);
            if (r < 0)
                return -1;
            if (r == 0)
                *loaded = 0;
            return 1;
        }
    }
    event = PyObject_CallFunctionObjArgs(self->messageReceived, c->session, plaintext, NULL);
    Py_DECREF(plaintext);
    return appendEvent(events, event);
}

static int
dataPathReady(DataPathObject *self)
{
    if (self->sessions == NULL || self->messageReceived == NULL || self->malformed == NULL
        || self->openState == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this DataPath is not initialised");
        return 0;
    }
    return 1;
}

static PyObject *
DataPath_run(DataPathObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *datagrams, *addr, *now, *events;
    Py_ssize_t i, start;
    Cached c = {0};
    int loaded = 0, r = 1;

    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "run(datagrams, start, addr, now, events)");
        return NULL;
    }
    if (!dataPathReady(self))
        return NULL;
    datagrams = args[0];
    addr = args[2];
    now = args[3];
    events = args[4];
    start = PyLong_AsSsize_t(args[1]);
    if (start == -1 && PyErr_Occurred())
        return NULL;
    if (!PyList_CheckExact(datagrams) && !PyTuple_CheckExact(datagrams)) {
        PyErr_SetString(PyExc_TypeError, "datagrams must be a list or a tuple");
        return NULL;
    }
    if (!PyList_CheckExact(events)) {
        PyErr_SetString(PyExc_TypeError, "events must be a list");
        return NULL;
    }
    /* the size is read again each time: a sink may change a list */
    for (i = start < 0 ? 0 : start; i < PySequence_Fast_GET_SIZE(datagrams); i++) {
        PyObject *d = PySequence_Fast_GET_ITEM(datagrams, i);
        if (!PyBytes_CheckExact(d))
            break;
        Py_INCREF(d); /* a sink may drop the list's reference */
        r = openOne(self, &c, &loaded, (const unsigned char *)PyBytes_AS_STRING(d), PyBytes_GET_SIZE(d), addr, now,
                    events);
        Py_DECREF(d);
        if (r <= 0)
            break;
    }
    cached_clear(&c);
    return r < 0 ? NULL : PyLong_FromSsize_t(i);
}

/*
 * The send half (sudp/udp/sendstate.py): seal message as one DATA packet of
 * session and append (packet, its peer's address) to outbox, as the
 * session's own sendMessage does. Returns 1 when done, 0 when the Python
 * path must do it (not open, too large, an address being validated, no
 * native sealer, at a key's rekey or usage limit, not bytes), -1 on error.
 * The sequence number is advanced before the packet is queued: a packet
 * that leaves was sealed under a number never used again.
 */
static int
sealData(DataPathObject *self, PyObject *session, PyObject *message, PyObject *now, PyObject *outbox)
{
#ifdef SUDP_EVP
    PyObject *rx = NULL, *ep = NULL, *sealer = NULL, *peerAddr = NULL, *stats = NULL, *v, *packet = NULL, *pair;
    unsigned long long limit, seq, rekeyAfter, rejectAfter, remote, number;
    Py_ssize_t len;
    unsigned char *p;
    int r = -1, k;

    if (!PyBytes_CheckExact(message))
        return 0;
    len = PyBytes_GET_SIZE(message);
    rx = GETSLOT(session, receiveState);
    if (rx == NULL)
        return -1;
    if ((k = SLOTIS(rx, state, self->openState)) <= 0)
        goto decided;
    /* an address being validated gets copies: the Python path sends them */
    if ((k = SLOTIS(rx, probe, Py_None)) <= 0)
        goto decided;
    if (GETCOUNT(session, maxMessageSize, &limit) < 0)
        goto done;
    if ((unsigned long long)len > limit) /* the Python path raises MessageTooLarge */
        goto python;
    ep = GETSLOT(session, sendEpoch);
    if (ep == NULL)
        goto done;
    sealer = GETSLOT(ep, sealer);
    if (sealer == NULL)
        goto done;
    if (!Py_IS_TYPE(sealer, &CipherType) || ((CipherObject *)sealer)->algorithm == NULL)
        goto python; /* not armed, or a plugin suite's cipher */
    if (GETCOUNT(ep, sendSeq, &seq) < 0 || GETCOUNT(session, rekeyAfterMessages, &rekeyAfter) < 0
        || GETCOUNT(session, rejectAfterMessages, &rejectAfter) < 0)
        goto done;
    if (seq + 1 >= rekeyAfter || seq + 1 >= rejectAfter)
        goto python; /* this packet starts a rekey, or the key is (nearly) spent */
    if (GETCOUNT(ep, number, &number) < 0 || GETCOUNT(session, remoteIndex, &remote) < 0)
        goto done;
    if (remote > 0xFFFFFFFFULL) {
        PyErr_SetString(PyExc_OverflowError, "the session's remoteIndex is over 32 bits");
        goto done;
    }
    peerAddr = GETSLOT(rx, peerAddr);
    if (peerAddr == NULL)
        goto done;
    stats = GETSLOT(rx, stats);
    if (stats == NULL)
        goto done;
    if (!PyDict_CheckExact(stats))
        goto python;

    packet = PyBytes_FromStringAndSize(NULL, DATA_HEADER_SIZE + len + TAG_SIZE);
    if (packet == NULL)
        goto done;
    p = (unsigned char *)PyBytes_AS_STRING(packet);
    p[0] = (unsigned char)(0x18 | (number & 1));
    putBigEndian(p + 1, remote, 4);
    putBigEndian(p + 5, seq, 8);
    if (cipher_seal((CipherObject *)sealer, seq, p, DATA_HEADER_SIZE, (const unsigned char *)PyBytes_AS_STRING(message),
                    (size_t)len, p + DATA_HEADER_SIZE) < 0)
        goto done;
    /* the number is spent before the packet can leave */
    v = PyLong_FromUnsignedLongLong(seq + 1);
    if (v == NULL)
        goto done;
    k = SETSLOT(ep, sendSeq, v);
    Py_DECREF(v);
    if (k < 0)
        goto done;
    pair = PyTuple_Pack(2, packet, peerAddr);
    if (pair == NULL)
        goto done;
    k = PyList_Append(outbox, pair);
    Py_DECREF(pair);
    if (k < 0 || SETSLOT(session, lastSend, now) < 0 || incrementCount(stats, s_sent) < 0)
        goto done;
    r = 1;
    goto done;
decided: /* k: 0, the Python path's; -1, an error */
    if (k < 0)
        goto done;
python:
    r = 0;
done:
    Py_XDECREF(rx);
    Py_XDECREF(ep);
    Py_XDECREF(sealer);
    Py_XDECREF(peerAddr);
    Py_XDECREF(stats);
    Py_XDECREF(packet);
    return r;
#else
    return 0;
#endif
}

static int
sendReady(DataPathObject *self, PyObject *outbox)
{
    if (self->openState == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "this DataPath is not initialised");
        return 0;
    }
    if (!PyList_CheckExact(outbox)) {
        PyErr_SetString(PyExc_TypeError, "outbox must be a list");
        return 0;
    }
    return 1;
}

static PyObject *
DataPath_send(DataPathObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    int r;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "send(session, message, now, outbox)");
        return NULL;
    }
    if (!sendReady(self, args[3]))
        return NULL;
    r = sealData(self, args[0], args[1], args[2], args[3]);
    if (r < 0)
        return NULL;
    return PyBool_FromLong(r);
}

static PyObject *
DataPath_sendMany(DataPathObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    PyObject *messages, **items;
    Py_ssize_t i, n;
    int r;
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "sendMany(session, messages, start, now, outbox)");
        return NULL;
    }
    messages = args[1];
    if (!sendReady(self, args[4]))
        return NULL;
    if (!PyList_CheckExact(messages) && !PyTuple_CheckExact(messages)) {
        PyErr_SetString(PyExc_TypeError, "messages must be a list or a tuple");
        return NULL;
    }
    i = PyLong_AsSsize_t(args[2]);
    if (i == -1 && PyErr_Occurred())
        return NULL;
    if (i < 0)
        i = 0;
    n = PySequence_Fast_GET_SIZE(messages);
    items = PySequence_Fast_ITEMS(messages);
    for (; i < n; i++) {
        r = sealData(self, args[0], items[i], args[3], args[4]);
        if (r < 0)
            return NULL;
        if (r == 0)
            break;
    }
    return PyLong_FromSsize_t(i);
}

static PyMethodDef DataPath_methods[] = {
    {"send", (PyCFunction)(void (*)(void))DataPath_send, METH_FASTCALL,
     "send(session, message, now, outbox) -> True if message (bytes) was sealed as one DATA packet of "
     "session and (packet, address) appended to outbox, as Session.sendMessage does; False if the "
     "Python path must send it (not open, too large, an address being validated, no native sealer, "
     "at the key's rekey or usage limit): nothing was changed."},
    {"sendMany", (PyCFunction)(void (*)(void))DataPath_sendMany, METH_FASTCALL,
     "sendMany(session, messages, start, now, outbox) -> the index of the first message from start on "
     "that send() left to the Python path (len(messages) if none); every one before it is queued."},
    {"run", (PyCFunction)(void (*)(void))DataPath_run, METH_FASTCALL,
     "run(datagrams, start, addr, now, events) -> the index of the first datagram from start on "
     "that was not the common case (DATA, open session, known address, fresh, authentic); "
     "every one before it has been delivered: to its session's sink while events is empty "
     "(a sink's Exception becomes a deliveryFailed event), else as a MessageReceived in events."},
    {NULL}};

static PyTypeObject DataPathType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sudp._speedups.DataPath",
    .tp_doc = "DataPath(sessions, messageReceived, malformed, openState, maxDatagram, deliveryFailed=None): "
              "without deliveryFailed, sinks are not used.",
    .tp_basicsize = sizeof(DataPathObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)DataPath_init,
    .tp_dealloc = (destructor)DataPath_dealloc,
    .tp_methods = DataPath_methods,
};

/* ------------------------------------------------------------------------ */
/* Receiver and sendBatch (Linux)                                            */
/* ------------------------------------------------------------------------ */

#ifdef SUDP_MMSG

#define CONTROL_SPACE CMSG_SPACE(sizeof(int))

typedef struct {
    PyObject_HEAD
    int fd;
    unsigned int count;
    size_t bufSize;
    char *buffers;
    char *controls;
    struct mmsghdr *msgs;
    struct iovec *iovs;
    struct sockaddr_storage *addrs;
    struct sockaddr_storage lastAddr;
    socklen_t lastLen;
    PyObject *lastTuple;
    int busy; /* in readInto, which may run Python code: no other read, no re-init */
} ReceiverObject;

static void
Receiver_free(ReceiverObject *self)
{
    PyMem_Free(self->buffers);
    PyMem_Free(self->controls);
    PyMem_Free(self->msgs);
    PyMem_Free(self->iovs);
    PyMem_Free(self->addrs);
    self->buffers = self->controls = NULL;
    self->msgs = NULL;
    self->iovs = NULL;
    self->addrs = NULL;
}

static int
Receiver_init(ReceiverObject *self, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"fd", "count", "bufferSize", NULL};
    int fd;
    unsigned int count, k;
    Py_ssize_t bufSize;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iIn", kwlist, &fd, &count, &bufSize))
        return -1;
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this Receiver is reading");
        return -1;
    }
    if (count < 1 || count > 1024 || bufSize < 1 || bufSize > 65536) {
        PyErr_SetString(PyExc_ValueError, "count is 1-1024 and bufferSize 1-65536");
        return -1;
    }
    Receiver_free(self);
    self->fd = fd;
    self->count = count;
    self->bufSize = (size_t)bufSize;
    self->buffers = PyMem_Malloc((size_t)count * (size_t)bufSize);
    self->controls = PyMem_Calloc(count, CONTROL_SPACE);
    self->msgs = PyMem_Calloc(count, sizeof(struct mmsghdr));
    self->iovs = PyMem_Calloc(count, sizeof(struct iovec));
    self->addrs = PyMem_Calloc(count, sizeof(struct sockaddr_storage));
    if (!self->buffers || !self->controls || !self->msgs || !self->iovs || !self->addrs) {
        Receiver_free(self);
        PyErr_NoMemory();
        return -1;
    }
    for (k = 0; k < count; k++) {
        self->iovs[k].iov_base = self->buffers + (size_t)k * self->bufSize;
        self->iovs[k].iov_len = self->bufSize;
    }
    self->lastLen = 0;
    Py_CLEAR(self->lastTuple);
    return 0;
}

static void
Receiver_dealloc(ReceiverObject *self)
{
    Receiver_free(self);
    Py_XDECREF(self->lastTuple);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* (host, port) for a source address, the last one cached */
static PyObject *
addressTuple(ReceiverObject *self, struct sockaddr_storage *sa, socklen_t len)
{
    char host[INET6_ADDRSTRLEN];
    int port;
    PyObject *t;
    if (self->lastTuple != NULL && len == self->lastLen && memcmp(sa, &self->lastAddr, len) == 0) {
        Py_INCREF(self->lastTuple);
        return self->lastTuple;
    }
    if (sa->ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        port = ntohs(a->sin_port);
    }
    else if (sa->ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        port = ntohs(a->sin6_port);
    }
    else {
        PyErr_SetString(PyExc_OSError, "a datagram from an address family sudp does not serve");
        return NULL;
    }
    t = Py_BuildValue("(si)", host, port);
    if (t == NULL)
        return NULL;
    Py_XSETREF(self->lastTuple, t);
    memcpy(&self->lastAddr, sa, len);
    self->lastLen = len;
    Py_INCREF(t);
    return t;
}

/*
 * One recvmmsg into the buffers: the number of messages read, 0 when none
 * is waiting, or -1 with an exception.
 */
static int
receiverFill(ReceiverObject *self)
{
    unsigned int k;
    int got;
    if (self->msgs == NULL || self->count == 0) {
        PyErr_SetString(PyExc_RuntimeError, "this Receiver is not initialised (call Receiver(fd, count, bufferSize))");
        return -1;
    }
    if (self->busy) {
        PyErr_SetString(PyExc_RuntimeError, "this Receiver is reading");
        return -1;
    }
    for (k = 0; k < self->count; k++) {
        struct msghdr *h = &self->msgs[k].msg_hdr;
        h->msg_name = &self->addrs[k];
        h->msg_namelen = sizeof(struct sockaddr_storage);
        h->msg_iov = &self->iovs[k];
        h->msg_iovlen = 1;
        h->msg_control = self->controls + (size_t)k * CONTROL_SPACE;
        h->msg_controllen = CONTROL_SPACE;
        h->msg_flags = 0;
        self->msgs[k].msg_len = 0;
    }
    do {
        got = recvmmsg(self->fd, self->msgs, self->count, MSG_DONTWAIT, NULL);
    } while (got < 0 && errno == EINTR);
    if (got < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        PyErr_SetFromErrno(PyExc_OSError);
        return -1;
    }
    return got;
}

/* The segment size of message k: its GRO segment size, else its length. */
static size_t
segmentOf(ReceiverObject *self, unsigned int k)
{
    struct msghdr *h = &self->msgs[k].msg_hdr;
    size_t len = self->msgs[k].msg_len, segment = len;
    struct cmsghdr *cm;
    for (cm = CMSG_FIRSTHDR(h); cm != NULL; cm = CMSG_NXTHDR(h, cm)) {
        if (cm->cmsg_level == SOL_UDP && cm->cmsg_type == UDP_GRO && cm->cmsg_len >= CMSG_LEN(sizeof(int))) {
            int size;
            memcpy(&size, CMSG_DATA(cm), sizeof(int));
            if (size > 0 && (size_t)size < len)
                segment = (size_t)size;
        }
    }
    return segment;
}

static PyObject *
Receiver_read(ReceiverObject *self, PyObject *unused)
{
    unsigned int k;
    int got = receiverFill(self);
    PyObject *groups, *group = NULL, *groupAddr = NULL;
    Py_ssize_t bytes = 0;

    if (got < 0)
        return NULL;
    groups = PyList_New(0);
    if (groups == NULL)
        return NULL;
    for (k = 0; k < (unsigned int)got; k++) {
        const char *data = self->buffers + (size_t)k * self->bufSize;
        size_t len = self->msgs[k].msg_len, segment = segmentOf(self, k), off;
        PyObject *addr;
        bytes += (Py_ssize_t)len;
        addr = addressTuple(self, &self->addrs[k], self->msgs[k].msg_hdr.msg_namelen);
        if (addr == NULL)
            goto error;
        if (group == NULL || addr != groupAddr) {
            PyObject *pair;
            group = PyList_New(0);
            if (group == NULL) {
                Py_DECREF(addr);
                goto error;
            }
            pair = PyTuple_Pack(2, group, addr);
            Py_DECREF(group); /* the pair and the list of groups hold it */
            if (pair == NULL || PyList_Append(groups, pair) < 0) {
                Py_XDECREF(pair);
                Py_DECREF(addr);
                goto error;
            }
            Py_DECREF(pair);
            groupAddr = addr;
        }
        Py_DECREF(addr); /* groupAddr stays alive in its pair */
        if (len == 0) {
            PyObject *empty = PyBytes_FromStringAndSize(NULL, 0);
            if (empty == NULL || PyList_Append(group, empty) < 0) {
                Py_XDECREF(empty);
                goto error;
            }
            Py_DECREF(empty);
            continue;
        }
        for (off = 0; off < len; off += segment) {
            size_t take = len - off < segment ? len - off : segment;
            PyObject *b = PyBytes_FromStringAndSize(data + off, (Py_ssize_t)take);
            if (b == NULL || PyList_Append(group, b) < 0) {
                Py_XDECREF(b);
                goto error;
            }
            Py_DECREF(b);
        }
    }
    {
        PyObject *result = Py_BuildValue("(On)", groups, bytes);
        Py_DECREF(groups);
        return result;
    }
error:
    Py_DECREF(groups);
    return NULL;
}

/* engine.events, which must be a list: a new reference, or NULL. */
static PyObject *
eventsOf(PyObject *engine)
{
    PyObject *events = PyObject_GetAttr(engine, s_events);
    if (events != NULL && !PyList_CheckExact(events)) {
        Py_DECREF(events);
        PyErr_SetString(PyExc_TypeError, "engine.events must be a list");
        return NULL;
    }
    return events;
}

/*
 * Hand the datagram (p, len) from addr to fallback(datagram, addr, now), the
 * engine's receiveDatagram, and read engine.events again (Python code ran).
 * Returns 0, or -1 with an exception.
 */
static int
fallBack(PyObject *fallback, const char *p, size_t len, PyObject *addr, PyObject *now, PyObject *engine,
         PyObject **events)
{
    PyObject *b = PyBytes_FromStringAndSize(p, (Py_ssize_t)len), *result;
    if (b == NULL)
        return -1;
    result = PyObject_CallFunctionObjArgs(fallback, b, addr, now, NULL);
    Py_DECREF(b);
    if (result == NULL)
        return -1;
    Py_DECREF(result);
    Py_SETREF(*events, eventsOf(engine));
    return *events == NULL ? -1 : 0;
}

static PyObject *
Receiver_readInto(ReceiverObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    DataPathObject *dp;
    PyObject *fallback, *engine, *now, *events = NULL, *addr = NULL, *result = NULL;
    Cached c = {0};
    Py_ssize_t bytes = 0, datagrams = 0;
    unsigned int k;
    int got, loaded = 0, r;

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "readInto(dataPath, fallback, engine, now)");
        return NULL;
    }
    if (!Py_IS_TYPE(args[0], &DataPathType)) {
        PyErr_SetString(PyExc_TypeError, "dataPath must be a sudp._speedups.DataPath");
        return NULL;
    }
    dp = (DataPathObject *)args[0];
    fallback = args[1];
    engine = args[2];
    now = args[3];
    if (!dataPathReady(dp))
        return NULL;
    got = receiverFill(self);
    if (got <= 0)
        return got < 0 ? NULL : Py_BuildValue("(nn)", (Py_ssize_t)0, (Py_ssize_t)0);
    events = eventsOf(engine);
    if (events == NULL)
        return NULL;
    /* Python code runs from here (sinks, fallback): the buffers stay ours */
    Py_INCREF(self);
    self->busy = 1;
    for (k = 0; k < (unsigned int)got; k++) {
        const char *data = self->buffers + (size_t)k * self->bufSize;
        size_t len = self->msgs[k].msg_len, segment = segmentOf(self, k), off;
        PyObject *from = addressTuple(self, &self->addrs[k], self->msgs[k].msg_hdr.msg_namelen);
        if (from == NULL)
            goto done;
        if (from != addr) /* the cached session was found for another address */
            loaded = 0;
        Py_XSETREF(addr, from);
        bytes += (Py_ssize_t)len;
        if (len == 0) { /* an empty datagram: the engine counts it */
            datagrams++;
            if (fallBack(fallback, data, 0, addr, now, engine, &events) < 0)
                goto done;
            loaded = 0;
            continue;
        }
        for (off = 0; off < len; off += segment) {
            size_t take = len - off < segment ? len - off : segment;
            datagrams++;
            r = openOne(dp, &c, &loaded, (const unsigned char *)data + off, (Py_ssize_t)take, addr, now, events);
            if (r < 0)
                goto done;
            if (r == 0) {
                if (fallBack(fallback, data + off, take, addr, now, engine, &events) < 0)
                    goto done;
                loaded = 0; /* the engine may have changed any session */
            }
        }
    }
    result = Py_BuildValue("(nn)", datagrams, bytes);
done:
    self->busy = 0;
    cached_clear(&c);
    Py_XDECREF(addr);
    Py_XDECREF(events);
    Py_DECREF(self);
    return result;
}

static PyMethodDef Receiver_methods[] = {
    {"read", (PyCFunction)Receiver_read, METH_NOARGS,
     "read() -> (groups, bytes): up to count datagrams in one recvmmsg, as a list of "
     "(datagrams, (host, port)) for runs from one address (GRO reads cut at their segment "
     "size), and the bytes read. ([], 0) when nothing is waiting. Raises OSError."},
    {"readInto", (PyCFunction)(void (*)(void))Receiver_readInto, METH_FASTCALL,
     "readInto(dataPath, fallback, engine, now) -> (datagrams, bytes): one recvmmsg, each datagram "
     "in order through dataPath's common case straight from the read buffer (as DataPath.run does, "
     "queueing events in engine.events), and each other one to fallback(datagram, addr, now), the "
     "engine's receiveDatagram. (0, 0) when nothing is waiting. Raises OSError."},
    {NULL}};

static PyTypeObject ReceiverType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "sudp._speedups.Receiver",
    .tp_doc = "Receiver(fd, count, bufferSize): batched, non-blocking reads of a UDP socket.",
    .tp_basicsize = sizeof(ReceiverObject),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Receiver_init,
    .tp_dealloc = (destructor)Receiver_dealloc,
    .tp_methods = Receiver_methods,
};

static int
parseAddress(PyObject *addr, int family, struct sockaddr_storage *sa, socklen_t *len)
{
    const char *host;
    int port;
    if (!PyTuple_Check(addr) || PyTuple_GET_SIZE(addr) < 2) {
        PyErr_SetString(PyExc_TypeError, "an address is a (host, port) tuple");
        return -1;
    }
    host = PyUnicode_AsUTF8(PyTuple_GET_ITEM(addr, 0));
    if (host == NULL)
        return -1;
    port = asInt(PyTuple_GET_ITEM(addr, 1));
    if (port == -1 && PyErr_Occurred())
        return -1;
    if (port < 0 || port > 65535) {
        PyErr_SetString(PyExc_OverflowError, "port must be 0-65535");
        return -1;
    }
    memset(sa, 0, sizeof(*sa));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)sa;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        if (inet_pton(AF_INET, host, &a->sin_addr) != 1)
            goto bad;
        *len = sizeof(*a);
    }
    else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)sa;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        if (inet_pton(AF_INET6, host, &a->sin6_addr) != 1)
            goto bad;
        *len = sizeof(*a);
    }
    return 0;
bad:
    PyErr_Format(PyExc_ValueError, "not a numeric address of this socket's family: %R", addr);
    return -1;
}

#define SEND_BATCH 64   /* messages per sendmmsg */
#define SEND_IOVS 1024   /* datagrams per sendmmsg */
#define MAX_SEGMENTS 64  /* the kernel's UDP_MAX_SEGMENTS */
#define MAX_GSO_BYTES 65507
#ifndef UDP_SEGMENT
#define UDP_SEGMENT 103
#endif

static int
gsoRefusal(int e)
{
    return e == EIO || e == EINVAL || e == ENOPROTOOPT || e == EOPNOTSUPP;
}

static PyObject *
sendBatch(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    int fd, family, gso, gsoRefused = 0, firstErrno = 0;
    PyObject *items, **list;
    Py_ssize_t n, done = 0, sent = 0, failed = 0;
    struct mmsghdr msgs[SEND_BATCH];
    struct iovec iovs[SEND_IOVS];
    struct sockaddr_storage addrs[SEND_BATCH];
    char controls[SEND_BATCH][CMSG_SPACE(sizeof(uint16_t))];
    Py_ssize_t firstItem[SEND_BATCH], segments[SEND_BATCH];

    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "sendBatch(fd, family, [(datagram, (host, port)), ...], gso)");
        return NULL;
    }
    fd = asInt(args[0]);
    family = asInt(args[1]);
    if (PyErr_Occurred())
        return NULL;
    if (family != AF_INET && family != AF_INET6) {
        PyErr_SetString(PyExc_ValueError, "family is AF_INET or AF_INET6");
        return NULL;
    }
    items = args[2];
    if (!PyList_CheckExact(items)) {
        PyErr_SetString(PyExc_TypeError, "the datagrams are a list of (bytes, address)");
        return NULL;
    }
    gso = PyObject_IsTrue(args[3]);
    if (gso < 0)
        return NULL;
    n = PyList_GET_SIZE(items);
    list = PySequence_Fast_ITEMS(items);
    /* check every item first: no Python code runs while datagrams are sent */
    for (done = 0; done < n; done++) {
        PyObject *item = list[done];
        if (!PyTuple_Check(item) || PyTuple_GET_SIZE(item) != 2 || !PyBytes_Check(PyTuple_GET_ITEM(item, 0))) {
            PyErr_SetString(PyExc_TypeError, "each datagram is (bytes, (host, port))");
            return NULL;
        }
    }
    done = 0;
    while (done < n) {
        Py_ssize_t m = 0, iov = 0, i = done, k;
        PyObject *lastAddr = NULL;
        /* messages: a datagram, or with gso a run to one address of one
           size (the last may be shorter) as one segmented send */
        while (i < n && m < SEND_BATCH && iov < SEND_IOVS) {
            PyObject *addr = PyTuple_GET_ITEM(list[i], 1), *data = PyTuple_GET_ITEM(list[i], 0);
            Py_ssize_t size = PyBytes_GET_SIZE(data), total = size, j = i + 1;
            struct msghdr *h = &msgs[m].msg_hdr;
            if (m > 0 && addr == lastAddr) {
                addrs[m] = addrs[m - 1];
                h->msg_namelen = msgs[m - 1].msg_hdr.msg_namelen;
            }
            else {
                socklen_t len;
                if (parseAddress(addr, family, &addrs[m], &len) < 0)
                    return NULL;
                h->msg_namelen = len;
            }
            lastAddr = addr;
            iovs[iov].iov_base = PyBytes_AS_STRING(data);
            iovs[iov].iov_len = (size_t)size;
            if (gso) {
                while (j < n && j - i < MAX_SEGMENTS && iov + (j - i) < SEND_IOVS) {
                    PyObject *next = list[j];
                    Py_ssize_t length = PyBytes_GET_SIZE(PyTuple_GET_ITEM(next, 0));
                    int same = PyTuple_GET_ITEM(next, 1) == addr;
                    if (!same) {
                        same = PyObject_RichCompareBool(PyTuple_GET_ITEM(next, 1), addr, Py_EQ);
                        if (same < 0)
                            return NULL;
                    }
                    if (!same || length > size || length == 0 || total + length > MAX_GSO_BYTES)
                        break;
                    iovs[iov + (j - i)].iov_base = PyBytes_AS_STRING(PyTuple_GET_ITEM(next, 0));
                    iovs[iov + (j - i)].iov_len = (size_t)length;
                    total += length;
                    j++;
                    if (length < size)
                        break;
                }
            }
            h->msg_name = &addrs[m];
            h->msg_iov = &iovs[iov];
            h->msg_iovlen = (size_t)(j - i);
            h->msg_flags = 0;
            if (j - i > 1) {
                struct cmsghdr *cm;
                uint16_t segment = (uint16_t)size;
                h->msg_control = controls[m];
                h->msg_controllen = sizeof(controls[m]);
                cm = CMSG_FIRSTHDR(h);
                cm->cmsg_level = SOL_UDP;
                cm->cmsg_type = UDP_SEGMENT;
                cm->cmsg_len = CMSG_LEN(sizeof(uint16_t));
                memcpy(CMSG_DATA(cm), &segment, sizeof(segment));
            }
            else {
                h->msg_control = NULL;
                h->msg_controllen = 0;
            }
            firstItem[m] = i;
            segments[m] = j - i;
            iov += j - i;
            i = j;
            m++;
        }
        k = 0;
        while (k < m) {
            int r = sendmmsg(fd, msgs + k, (unsigned int)(m - k), MSG_DONTWAIT);
            if (r < 0) {
                if (errno == EINTR)
                    continue;
                if (segments[k] > 1 && gsoRefusal(errno)) {
                    /* the kernel refuses segmented sends: from this
                       message on, one datagram per message */
                    gso = 0;
                    gsoRefused = 1;
                    break;
                }
                /* UDP is lossy: this message is lost; go on with the rest */
                if (!firstErrno)
                    firstErrno = errno;
                failed += segments[k];
                k++;
                continue;
            }
            for (; r > 0; r--, k++)
                sent += segments[k];
        }
        done = k < m ? firstItem[k] : i;
    }
    return Py_BuildValue("(nnii)", sent, failed, firstErrno, gsoRefused);
}

#endif /* SUDP_MMSG */

static PyMethodDef module_methods[] = {
#ifdef SUDP_MMSG
    {"sendBatch", (PyCFunction)(void (*)(void))sendBatch, METH_FASTCALL,
     "sendBatch(fd, family, [(datagram, (host, port)), ...], gso) -> (sent, failed, first errno, "
     "gso refused): sendmmsg, never blocking; with gso, runs to one address of one size go as "
     "segmented sends (UDP_SEGMENT), and if the kernel refuses those the rest go one by one and "
     "gso refused is 1. A datagram the kernel refuses is counted and skipped."},
#endif
#ifdef SUDP_EVP
    {"setMalformedPacket", (PyCFunction)setMalformedPacket, METH_O,
     "setMalformedPacket(cls): the exception Cipher.open raises, as cls('bad-tag')."},
#endif
    {NULL}};

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "sudp._speedups",
    "The per-datagram loops of sudp's data path in C (see sudp/speedups.py).", -1, module_methods,
};

/* Add names (a new tuple, or NULL after a failure) to m as name: 0, or -1. */
static int
addNames(PyObject *m, const char *name, PyObject *names)
{
    int r = names == NULL ? -1 : PyModule_AddObjectRef(m, name, names);
    Py_XDECREF(names);
    return r;
}

#define INTERN(var, text)                         \
    do {                                          \
        if ((var = PyUnicode_InternFromString(text)) == NULL) \
            return NULL;                          \
    } while (0)

PyMODINIT_FUNC
PyInit__speedups(void)
{
    PyObject *m;
    if ((one = PyLong_FromLong(1)) == NULL)
        return NULL;
    INTERN(s_receiveState, "receiveState");
    INTERN(s_state, "state");
    INTERN(s_epochs, "epochs");
    INTERN(s_peerAddr, "peerAddr");
    INTERN(s_probe, "probe");
    INTERN(s_minimumPacket, "minimumPacket");
    INTERN(s_stats, "stats");
    INTERN(s_heard, "heard");
    INTERN(s_opener, "opener");
    INTERN(s_window, "window");
    INTERN(s_lastRecv, "lastRecv");
    INTERN(s_sink, "sink");
    INTERN(s_open, "open");
    INTERN(s_received, "received");
    INTERN(s_sendEpoch, "sendEpoch");
    INTERN(s_remoteIndex, "remoteIndex");
    INTERN(s_maxMessageSize, "maxMessageSize");
    INTERN(s_rekeyAfterMessages, "rekeyAfterMessages");
    INTERN(s_rejectAfterMessages, "rejectAfterMessages");
    INTERN(s_lastSend, "lastSend");
    INTERN(s_sealer, "sealer");
    INTERN(s_sendSeq, "sendSeq");
    INTERN(s_number, "number");
    INTERN(s_sent, "sent");
    INTERN(s_events, "events");
    if (PyType_Ready(&WindowType) < 0 || PyType_Ready(&DataPathType) < 0)
        return NULL;
#ifdef SUDP_MMSG
    if (PyType_Ready(&ReceiverType) < 0)
        return NULL;
#endif
#ifdef SUDP_EVP
    if (PyType_Ready(&CipherType) < 0)
        return NULL;
#endif
    m = PyModule_Create(&moduledef);
    if (m == NULL)
        return NULL;
    /* the contracts with the Python side (sudp/udp/receivestate.py,
       sudp/udp/sendstate.py), from the very names used above */
    if (PyModule_AddObjectRef(m, "SESSION_FIELD", s_receiveState) < 0
        || addNames(m, "RECEIVE_STATE_FIELDS",
                    PyTuple_Pack(8, s_state, s_peerAddr, s_probe, s_minimumPacket, s_stats, s_epochs, s_lastRecv,
                                 s_sink)) < 0
        || addNames(m, "EPOCH_FIELDS", PyTuple_Pack(3, s_heard, s_opener, s_window)) < 0
        || addNames(m, "SEND_SESSION_FIELDS",
                    PyTuple_Pack(7, s_receiveState, s_maxMessageSize, s_sendEpoch, s_rekeyAfterMessages,
                                 s_rejectAfterMessages, s_remoteIndex, s_lastSend)) < 0
        || addNames(m, "SEND_EPOCH_FIELDS", PyTuple_Pack(3, s_sealer, s_sendSeq, s_number)) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    Py_INCREF(&WindowType);
    PyModule_AddObject(m, "Window", (PyObject *)&WindowType);
    Py_INCREF(&DataPathType);
    PyModule_AddObject(m, "DataPath", (PyObject *)&DataPathType);
#ifdef SUDP_MMSG
    Py_INCREF(&ReceiverType);
    PyModule_AddObject(m, "Receiver", (PyObject *)&ReceiverType);
#endif
#ifdef SUDP_EVP
    Py_INCREF(&CipherType);
    PyModule_AddObject(m, "Cipher", (PyObject *)&CipherType);
    PyModule_AddStringConstant(m, "OPENSSL_VERSION", OpenSSL_version(OPENSSL_VERSION));
#endif
    return m;
}
