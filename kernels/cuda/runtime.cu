#include <iostream>

#include "cuda/check.h"
#include "cuda/runtime.h"

namespace fervid::cuda {

namespace {

void log_failure(const char* what, cudaError_t rc) {
  if (rc != cudaSuccess)
    std::cerr << "fervid: " << what << " failed: " << cudaGetErrorName(rc) << "\n";
}

}  // namespace

Buffer device_buffer(size_t bytes) {
  void* p = nullptr;
  cudaError_t rc = cudaMalloc(&p, bytes ? bytes : 1);
  if (rc == cudaErrorMemoryAllocation) {
    cudaGetLastError();
    size_t free_bytes = 0, total = 0;
    cudaMemGetInfo(&free_bytes, &total);
    fail_device("out of device memory: " + std::to_string(bytes >> 20) + " MiB requested, " +
                std::to_string(free_bytes >> 20) + " MiB free of " + std::to_string(total >> 20));
  }
  FV_CUDA_CHECK(rc);
  return Buffer(p, bytes, Device::Cuda, [](void* q) { log_failure("cudaFree", cudaFree(q)); });
}

Buffer pinned_buffer(size_t bytes) {
  void* p = nullptr;
  FV_CUDA_CHECK(cudaMallocHost(&p, bytes ? bytes : 1));
  return Buffer(p, bytes, Device::PinnedHost,
                [](void* q) { log_failure("cudaFreeHost", cudaFreeHost(q)); });
}

Stream::Stream() { FV_CUDA_CHECK(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking)); }
Stream::~Stream() { log_failure("cudaStreamDestroy", cudaStreamDestroy(stream_)); }
void Stream::synchronize() const { FV_CUDA_CHECK(cudaStreamSynchronize(stream_)); }

Event::Event() { FV_CUDA_CHECK(cudaEventCreate(&event_)); }
Event::~Event() { log_failure("cudaEventDestroy", cudaEventDestroy(event_)); }
void Event::record(cudaStream_t stream) const { FV_CUDA_CHECK(cudaEventRecord(event_, stream)); }
void Event::synchronize() const { FV_CUDA_CHECK(cudaEventSynchronize(event_)); }
float Event::since(const Event& start) const {
  float ms = 0;
  FV_CUDA_CHECK(cudaEventSynchronize(event_));
  FV_CUDA_CHECK(cudaEventElapsedTime(&ms, start.event_, event_));
  return ms;
}

Graph::~Graph() {
  if (graph_) log_failure("cudaGraphDestroy", cudaGraphDestroy(graph_));
}

void GraphExec::launch(cudaStream_t stream) const { FV_CUDA_CHECK(cudaGraphLaunch(exec_, stream)); }
void GraphExec::reset() noexcept {
  if (exec_) log_failure("cudaGraphExecDestroy", cudaGraphExecDestroy(exec_));
  exec_ = nullptr;
}

}  // namespace fervid::cuda
