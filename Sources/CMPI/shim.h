// OpenMPI: the C API, with its handle macros (globals behind macros) exposed as functions.
#ifndef FAIRTUNE_CMPI_SHIM_H
#define FAIRTUNE_CMPI_SHIM_H
#include <mpi.h>

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

#endif
