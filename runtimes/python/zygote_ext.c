/*
 * _ignis_zygote: the Python binding of src/exec/sandbox/zygote.c for runtimes/python/zygote.py.
 * serve() runs the zygote's request loop: in the zygote it returns only when the daemon has
 * gone (None); in each sandboxed child it returns (argv, env) as lists of str, after
 * Python's own fork bookkeeping (PyOS_AfterFork_Child: locks, threads, at-fork hooks such
 * as random's reseeding). Built by the Makefile with the sandbox sources, never with
 * sanitizers (it is loaded into /usr/bin/python3).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdlib.h>

#include "exec/sandbox/sandbox.h"

static PyObject *strv_to_list(char **v)
{
    PyObject *list = PyList_New(0);
    for (size_t i = 0; list && v[i]; i++) {
        PyObject *s = PyUnicode_DecodeFSDefault(v[i]);
        if (!s || PyList_Append(list, s) < 0) {
            Py_XDECREF(s);
            Py_CLEAR(list);
            break;
        }
        Py_DECREF(s);
    }
    return list;
}

static void strv_free(char **v)
{
    for (size_t i = 0; v && v[i]; i++)
        free(v[i]);
    free(v);
}

static PyObject *serve(PyObject *self, PyObject *args)
{
    (void)self;
    (void)args;
    static const struct sbx_zygote_hooks hooks = {
        .before_fork = PyOS_BeforeFork,
        .after_fork_parent = PyOS_AfterFork_Parent,
        .after_fork_child = PyOS_AfterFork_Child,
    };
    char **argv = NULL, **envp = NULL;
    if (sbx_zygote_serve(&hooks, &argv, &envp) < 0)
        Py_RETURN_NONE;
    PyObject *a = strv_to_list(argv), *e = strv_to_list(envp);
    strv_free(argv);
    strv_free(envp);
    if (!a || !e) {
        Py_XDECREF(a);
        Py_XDECREF(e);
        return NULL;
    }
    PyObject *t = PyTuple_Pack(2, a, e);
    Py_DECREF(a);
    Py_DECREF(e);
    return t;
}

static PyMethodDef methods[] = {
    {"serve", serve, METH_NOARGS, "Serve zygote requests on fd 3; returns (argv, env) in a child."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_ignis_zygote", NULL, -1, methods, NULL, NULL, NULL, NULL};

PyMODINIT_FUNC PyInit__ignis_zygote(void)
{
    return PyModule_Create(&module);
}
