# Convenience entry points. Everything real is in CMakeLists.txt.
#   make demo   install missing packages, build (Release), run the guided tour
#   make test   install missing packages, build (Release), run the test suite
#   make bench  build and run the benchmarks against installed peers
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
WERROR ?= ON

.PHONY: all deps build demo test bench asan tsan install clean format

all: build

deps:
	@sh scripts/install-deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DPARTITA_WERROR=$(WERROR) $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)

demo: build
	./$(BUILD)/partita demo

test: build
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

bench:
	@PARTITA_BENCH_DEPS=1 sh scripts/install-deps.sh
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j $(JOBS)
	sh bench/run.sh $(BUILD)

asan: deps
	cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DPARTITA_SANITIZE=address,undefined -DPARTITA_WERROR=$(WERROR) -DPARTITA_BENCH=OFF
	cmake --build build-asan -j $(JOBS)
	cd build-asan && ctest --output-on-failure -j $(JOBS)

tsan: deps
	cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DPARTITA_SANITIZE=thread -DPARTITA_WERROR=$(WERROR) -DPARTITA_BENCH=OFF
	cmake --build build-tsan -j $(JOBS)
	cd build-tsan && ctest --output-on-failure -j $(JOBS) -E 'mpi|cli_install|cli_launch'

install: build
	cmake --install $(BUILD)

format:
	clang-format -i include/*.h include/partita/*.h src/*/*.c src/*/*.h tests/*.c tests/*.h bench/*.c

clean:
	rm -rf $(BUILD) build-asan build-tsan
