// OpenMPI: the C API, with its handle macros (globals behind macros) exposed as functions.
#ifndef FAIRTUNE_CMPI_SHIM_H
#define FAIRTUNE_CMPI_SHIM_H
#include <mpi.h>
#include <stdint.h>
#include <string.h>

static inline MPI_Comm fairtune_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Comm fairtune_mpi_comm_null(void) { return MPI_COMM_NULL; }
static inline MPI_Datatype fairtune_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype fairtune_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype fairtune_mpi_int(void) { return MPI_INT; }
static inline MPI_Datatype fairtune_mpi_int64(void) { return MPI_INT64_T; }
static inline MPI_Datatype fairtune_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Datatype fairtune_mpi_char(void) { return MPI_CHAR; }
static inline MPI_Op fairtune_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op fairtune_mpi_max(void) { return MPI_MAX; }
static inline MPI_Op fairtune_mpi_min(void) { return MPI_MIN; }
static inline MPI_Request fairtune_mpi_request_null(void) { return MPI_REQUEST_NULL; }
static inline MPI_Status *fairtune_mpi_status_ignore(void) { return MPI_STATUS_IGNORE; }
static inline MPI_Errhandler fairtune_mpi_errors_return(void) { return MPI_ERRORS_RETURN; }
static inline int fairtune_mpi_any_source(void) { return MPI_ANY_SOURCE; }
static inline int fairtune_mpi_any_tag(void) { return MPI_ANY_TAG; }
static inline int fairtune_mpi_undefined(void) { return MPI_UNDEFINED; }
static inline int fairtune_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
static inline void *fairtune_mpi_in_place(void) { return MPI_IN_PLACE; }

static inline MPI_Datatype fairtune_mpi_uint16(void) { return MPI_UINT16_T; }

/* The bfloat16 wire's reduction: both operands widened to fp32, added in fp32, the sum rounded
   to the nearest bfloat16 (ties to even; a NaN stays a quiet NaN). */
static void fairtune_bf16_sum(void *in, void *inout, int *length, MPI_Datatype *type) {
  (void)type;
  const uint16_t *a = (const uint16_t *)in;
  uint16_t *b = (uint16_t *)inout;
  for (int i = 0; i < *length; i++) {
    uint32_t x = (uint32_t)a[i] << 16, y = (uint32_t)b[i] << 16, u;
    float fx, fy, sum;
    memcpy(&fx, &x, 4);
    memcpy(&fy, &y, 4);
    sum = fx + fy;
    memcpy(&u, &sum, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
      b[i] = (uint16_t)((u | 0x00400000u) >> 16);
    } else {
      b[i] = (uint16_t)((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
    }
  }
}

/* The MPI operation over it, made once (after MPI_Init). */
static inline MPI_Op fairtune_mpi_bf16_sum(void) {
  static MPI_Op op = MPI_OP_NULL;
  if (op == MPI_OP_NULL) MPI_Op_create(fairtune_bf16_sum, 1, &op);
  return op;
}

#endif
