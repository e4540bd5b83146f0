// CHDF5: the C surface of libhdf5 (and zlib, for gzip-compressed IDX files) that Swift sees.
//
// HDF5's predefined types, property-list classes and flags are macros that expand to globals
// behind H5OPEN, or to casts; Swift's importer cannot see those, so each one gets a
// `static inline` dc_-prefixed function here. Calls whose public name depends on the HDF5
// version (H5Literate / H5Oget_info became version macros in 1.12) are wrapped too, so the
// Swift side compiles against 1.10 (Debian 12) and 1.14 (Debian 13) alike.
#ifndef DECOUPLED_CHDF5_SHIM_H
#define DECOUPLED_CHDF5_SHIM_H

#include <hdf5.h>
#include <zlib.h>
#include <stdint.h>
#include <string.h>

// ---- predefined native types -------------------------------------------------------------
static inline hid_t dc_h5t_native_float(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t dc_h5t_native_double(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t dc_h5t_native_int8(void) { return H5T_NATIVE_INT8; }
static inline hid_t dc_h5t_native_int16(void) { return H5T_NATIVE_INT16; }
static inline hid_t dc_h5t_native_int32(void) { return H5T_NATIVE_INT32; }
static inline hid_t dc_h5t_native_int64(void) { return H5T_NATIVE_INT64; }
static inline hid_t dc_h5t_native_uint8(void) { return H5T_NATIVE_UINT8; }
static inline hid_t dc_h5t_native_uint16(void) { return H5T_NATIVE_UINT16; }
static inline hid_t dc_h5t_native_uint32(void) { return H5T_NATIVE_UINT32; }
static inline hid_t dc_h5t_native_uint64(void) { return H5T_NATIVE_UINT64; }
static inline hid_t dc_h5t_c_s1(void) { return H5T_C_S1; }
static inline size_t dc_h5t_variable(void) { return H5T_VARIABLE; }

// ---- property-list classes and defaults --------------------------------------------------
static inline hid_t dc_h5p_default(void) { return H5P_DEFAULT; }
static inline hid_t dc_h5p_file_access(void) { return H5P_FILE_ACCESS; }
static inline hid_t dc_h5p_dataset_create(void) { return H5P_DATASET_CREATE; }
static inline hid_t dc_h5p_dataset_access(void) { return H5P_DATASET_ACCESS; }
static inline hid_t dc_h5p_link_create(void) { return H5P_LINK_CREATE; }
static inline hid_t dc_h5p_attribute_create(void) { return H5P_ATTRIBUTE_CREATE; }

// ---- dataspaces, error stacks, file flags ------------------------------------------------
static inline hid_t dc_h5s_all(void) { return H5S_ALL; }
static inline hsize_t dc_h5s_unlimited(void) { return H5S_UNLIMITED; }
static inline hid_t dc_h5e_default(void) { return H5E_DEFAULT; }
static inline unsigned dc_h5f_acc_rdonly(void) { return H5F_ACC_RDONLY; }
static inline unsigned dc_h5f_acc_rdwr(void) { return H5F_ACC_RDWR; }
static inline unsigned dc_h5f_acc_trunc(void) { return H5F_ACC_TRUNC; }
static inline unsigned dc_h5f_acc_excl(void) { return H5F_ACC_EXCL; }
static inline unsigned dc_h5f_obj_all(void) { return H5F_OBJ_ALL; }
static inline unsigned dc_h5f_obj_local(void) { return H5F_OBJ_LOCAL; }

// ---- version-dependent names -------------------------------------------------------------
/// Number of attributes attached to an object (H5Oget_info changed signature in 1.10.3 and 1.12).
static inline herr_t dc_h5o_num_attrs(hid_t obj, hsize_t *num_attrs) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    herr_t status = H5Oget_info3(obj, &info, H5O_INFO_NUM_ATTRS);
#elif H5_VERSION_GE(1, 10, 3)
    H5O_info_t info;
    herr_t status = H5Oget_info2(obj, &info, H5O_INFO_NUM_ATTRS);
#else
    H5O_info_t info;
    herr_t status = H5Oget_info(obj, &info);
#endif
    if (status >= 0) *num_attrs = info.num_attrs;
    return status;
}

/// Number of links in a group (H5Gget_info is stable, but keep the lookup here with its peers).
static inline herr_t dc_h5g_num_links(hid_t group, hsize_t *count) {
    H5G_info_t info;
    herr_t status = H5Gget_info(group, &info);
    if (status >= 0) *count = info.nlinks;
    return status;
}

/// Name of the idx-th link of a group in name order; returns the name length or a negative value.
static inline ssize_t dc_h5l_name_by_idx(hid_t group, hsize_t idx, char *name, size_t size) {
    return H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, idx, name, size, H5P_DEFAULT);
}

/// Type of the object a link points at (group, dataset, named type), or H5O_TYPE_UNKNOWN.
static inline int dc_h5o_type_by_name(hid_t loc, const char *name) {
#if H5_VERSION_GE(1, 12, 0)
    H5O_info2_t info;
    if (H5Oget_info_by_name3(loc, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return -1;
#elif H5_VERSION_GE(1, 10, 3)
    H5O_info_t info;
    if (H5Oget_info_by_name2(loc, name, &info, H5O_INFO_BASIC, H5P_DEFAULT) < 0) return -1;
#else
    H5O_info_t info;
    if (H5Oget_info_by_name(loc, name, &info, H5P_DEFAULT) < 0) return -1;
#endif
    return (int)info.type;
}

// ---- metadata cache ----------------------------------------------------------------------
/// Caps HDF5's metadata cache (chunk B-tree nodes, object headers) of files opened with `fapl`.
/// Its adaptive default may grow to 32 MiB on files with many chunks, which would make the
/// memory of a streaming reader depend on the dataset's size.
static inline herr_t dc_h5p_limit_metadata_cache(hid_t fapl, size_t max_bytes) {
    H5AC_cache_config_t config;
    memset(&config, 0, sizeof config);
    config.version = H5AC__CURR_CACHE_CONFIG_VERSION;
    if (H5Pget_mdc_config(fapl, &config) < 0) return -1;
    if (config.min_size > max_bytes) config.min_size = max_bytes;
    config.max_size = max_bytes;
    config.set_initial_size = 1;
    config.initial_size = config.initial_size < max_bytes ? config.initial_size : max_bytes;
    if (config.initial_size < config.min_size) config.initial_size = config.min_size;
    return H5Pset_mdc_config(fapl, &config);
}

// ---- error stack capture -----------------------------------------------------------------
/// One walked entry of the error stack, copied out so Swift needs no callback.
typedef struct {
    char major[96];
    char minor[96];
    char func[64];
    char desc[320];
} dc_h5e_entry;

typedef struct {
    dc_h5e_entry *entries;
    int capacity;
    int count;
} dc_h5e_walk_state;

static inline herr_t dc_h5e_walk_cb(unsigned n, const H5E_error2_t *err, void *client) {
    (void)n;
    dc_h5e_walk_state *state = (dc_h5e_walk_state *)client;
    if (state->count >= state->capacity) return 0;
    dc_h5e_entry *e = &state->entries[state->count++];
    e->major[0] = e->minor[0] = e->func[0] = e->desc[0] = 0;
    H5E_type_t kind;
    if (H5Eget_msg(err->maj_num, &kind, e->major, sizeof e->major) < 0) e->major[0] = 0;
    if (H5Eget_msg(err->min_num, &kind, e->minor, sizeof e->minor) < 0) e->minor[0] = 0;
    if (err->func_name) { strncpy(e->func, err->func_name, sizeof e->func - 1); e->func[sizeof e->func - 1] = 0; }
    if (err->desc) { strncpy(e->desc, err->desc, sizeof e->desc - 1); e->desc[sizeof e->desc - 1] = 0; }
    return 0;
}

/// Copies up to `capacity` entries of this thread's default error stack, innermost (where the
/// error was detected) first, and returns how many were copied.
static inline int dc_h5e_capture(dc_h5e_entry *entries, int capacity) {
    dc_h5e_walk_state state = { entries, capacity, 0 };
    if (H5Ewalk2(H5E_DEFAULT, H5E_WALK_UPWARD, dc_h5e_walk_cb, &state) < 0) return -1;
    return state.count;
}

/// Turns off HDF5's automatic printing of error stacks for the calling thread (in thread-safe
/// builds the setting is per thread, so every thread that calls HDF5 needs it once).
static inline herr_t dc_h5e_silence(void) { return H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

// zlib.h is included for gzopen/gzread, which read the IDX files whether gzip-compressed or not.

#endif
