import DecoupledCore
import Foundation
import Testing
@testable import DecoupledCheckpoint
@testable import DecoupledHDF5

/// Saving and loading give back exactly what was saved, in the documented layout.
@Suite struct RoundTripTests {
    @Test func roundTripIsBitExactForParamsSlotsAndMeta() throws {
        let dir = TempDir()
        let source = try makeArena(seed: 1)
        let store = try CheckpointStore(runDirectory: dir.path)
        let meta = makeMeta(step: 1234, epoch: 7)
        let path = try store.save(arena: source, slots: adamSlots, meta: meta, isBest: true)
        #expect(path == dir.file("checkpoints/ckpt-0000001234.h5"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.file("checkpoints")).sorted()
                == ["best.txt", "ckpt-0000001234.h5"])

        // Into a fresh arena whose slots do not exist yet: load creates them.
        let target = try ParameterArena(specs: testSpecs)
        let loaded = try store.load(path, into: target, slots: adamSlots)
        #expect(loaded == meta)
        #expect(snapshot(target) == snapshot(source))

        // And into an arena holding other values: every byte is replaced.
        let dirty = try makeArena(seed: 99)
        _ = try store.load(path, into: dirty, slots: adamSlots)
        #expect(snapshot(dirty) == snapshot(source))

        let v = try CheckpointStore.verify(path: path)
        #expect(v.meta == meta)
        #expect(v.slots == adamSlots)
        #expect(v.tensors == Dictionary(uniqueKeysWithValues: testSpecs.map { ($0.name, $0.shape) }))
        #expect(v.parameterCount == source.parameterCount)
    }

    @Test func layoutMatchesTheDocumentation() throws {
        let dir = TempDir()
        let arena = try makeArena(seed: 2)
        let path = try CheckpointStore(runDirectory: dir.path).save(arena: arena, slots: adamSlots, meta: makeMeta(step: 5))
        let f = try H5File(path)
        #expect(try f.integerAttribute("format_version") == 1)
        #expect(try f.integerAttribute("step") == 5)
        #expect(try f.integerAttribute("epoch") == 0)
        #expect(try f.openGroup("/params").childNames() == testSpecs.map(\.name).sorted())
        #expect(try f.openGroup("/state").childNames() == adamSlots)
        #expect(try f.openGroup("/meta").childNames() == ["config", "plugins", "run_state"])
        for spec in testSpecs {
            for p in ["/params/" + spec.name] + adamSlots.map({ "/state/\($0)/\(spec.name)" }) {
                let info = try f.openDataset(p).info()
                #expect(info.shape == spec.shape, "\(p)")
                #expect(info.elementType == .float32, "\(p)")
                #expect(info.chunkShape == nil && info.filters.isEmpty, "\(p) should be contiguous, unfiltered")
            }
        }
        let ds = try f.openDataset("/params/emb.weight")
        let crc = tensorBytes(arena, arena.params, "emb.weight").withUnsafeBytes { CRC32.checksum($0) }
        #expect(try ds.integerAttribute("crc32") == Int64(crc))
        let config = try f.openDataset("/meta/config").read(as: UInt8.self)
        #expect(String(decoding: config, as: UTF8.self) == makeMeta(step: 5).config)
    }

    @Test func emptyMetaAndNoSlotsRoundTrip() throws {
        let dir = TempDir()
        let source = try makeArena(seed: 3, slots: [])
        let store = try CheckpointStore(runDirectory: dir.path)
        let meta = CheckpointMeta(step: 0, epoch: 0, config: "", plugins: [:], runState: Data())
        let path = try store.save(arena: source, slots: [], meta: meta)
        let target = try ParameterArena(specs: testSpecs)
        #expect(try store.load(path, into: target, slots: []) == meta)
        #expect(snapshot(target) == snapshot(source))
    }

    /// The store refuses saves above the file size limit by this bound, so it must hold.
    @Test func sizeBoundHoldsForManySmallTensorsAndLargeMeta() throws {
        let dir = TempDir()
        let store = try CheckpointStore(runDirectory: dir.path)
        let specs = (0..<300).map { TensorSpec(name: "block\($0).norm.weight", shape: [$0 % 7 + 1], role: .norm) }
        let arena = try makeArena(seed: 8, specs: specs, slots: ["exp_avg", "exp_avg_sq", "momentum_buffer"])
        var meta = makeMeta(step: 9)
        meta.config = String(repeating: "x = 1\n", count: 20_000)
        meta.plugins = Dictionary(uniqueKeysWithValues: (0..<50).map { ("plugin-\($0)", "1.\($0).0") })
        let slots = ["exp_avg", "exp_avg_sq", "momentum_buffer"]
        let path = try store.save(arena: arena, slots: slots, meta: meta)
        let size = try #require(FS.fileSize(path))
        #expect(size <= CheckpointWriter.sizeBound(arena: arena, slots: slots, meta: meta))
        for (a, s) in [(try makeArena(seed: 9), adamSlots), (try makeArena(seed: 10, slots: []), [])] {
            let p = try store.save(arena: a, slots: s, meta: makeMeta(step: 10))
            #expect(try #require(FS.fileSize(p)) <= CheckpointWriter.sizeBound(arena: a, slots: s, meta: makeMeta(step: 10)))
        }
    }

    @Test func saveRefusesBadArgumentsBeforeWritingAnything() throws {
        let dir = TempDir()
        let arena = try makeArena(seed: 4, specs: testSpecs + [TensorSpec(name: "enc/fc.weight", shape: [2], role: .weight)])
        let store = try CheckpointStore(runDirectory: dir.path)
        let e = expectCheckpointError {
            try store.save(arena: arena, slots: ["exp_avg", "momentum_buffer", "exp_avg"], meta: makeMeta(step: -1))
        }
        let text = "\(e.map { "\($0)" } ?? "")"
        for fragment in ["step is -1", "'momentum_buffer' does not exist in the arena (it has: exp_avg, exp_avg_sq)",
                         "'exp_avg' is listed twice", "'enc/fc.weight' cannot be stored"] {
            #expect(text.contains(fragment), "\(text)")
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: store.directory).isEmpty)
    }

    @Test func savingTheSameStepAgainReplacesTheFile() throws {
        let dir = TempDir()
        let store = try CheckpointStore(runDirectory: dir.path)
        try store.save(arena: try makeArena(seed: 5), slots: adamSlots, meta: makeMeta(step: 3))
        let second = try makeArena(seed: 6)
        let path = try store.save(arena: second, slots: adamSlots, meta: makeMeta(step: 3))
        let target = try ParameterArena(specs: testSpecs)
        _ = try store.load(path, into: target, slots: adamSlots)
        #expect(snapshot(target) == snapshot(second))
        #expect(store.list().map(\.step) == [3])
    }

    /// The h5py snippet of docs/checkpoint-format.md, run as written, reads our files with the
    /// same values and verifies the checksums; a flipped data byte makes it raise.
    @Test func h5pyReadsCheckpointsWithTheDocumentedSnippet() throws {
        let doc = try String(contentsOfFile: repoRoot + "/docs/checkpoint-format.md", encoding: .utf8)
        let start = try #require(doc.range(of: "```python\n"))
        let end = try #require(doc.range(of: "```", range: start.upperBound..<doc.endIndex))
        let snippet = String(doc[start.upperBound..<end.lowerBound])

        let dir = TempDir()
        let arena = try makeArena(seed: 7)
        let meta = makeMeta(step: 42, epoch: 4)
        let path = try CheckpointStore(runDirectory: dir.path).save(arena: arena, slots: adamSlots, meta: meta)
        let driver = snippet + """

        import sys
        ck = load_checkpoint(sys.argv[1])
        hexes = lambda d: {n: [a.dtype.str, list(a.shape), a.tobytes().hex()] for n, a in d.items()}
        print(json.dumps({"step": ck["step"], "epoch": ck["epoch"], "config": ck["config"], "plugins": ck["plugins"],
                          "run_state": ck["run_state"].decode(), "params": hexes(ck["params"]),
                          "state": {s: hexes(t) for s, t in ck["state"].items()}}))
        """
        let r = try python(driver, [path])
        #expect(r.status == 0, "\(r.stderr)")
        let out = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        #expect(out["step"] as? Int == 42)
        #expect(out["epoch"] as? Int == 4)
        #expect(out["config"] as? String == meta.config)
        #expect(out["plugins"] as? [String: String] == meta.plugins)
        #expect(out["run_state"] as? String == String(decoding: meta.runState, as: UTF8.self))
        func check(_ tensors: Any?, _ buffer: AlignedBuffer, _ role: String) {
            guard let tensors = tensors as? [String: [Any]] else { Issue.record("no \(role) in h5py output"); return }
            #expect(Set(tensors.keys) == Set(testSpecs.map(\.name)), "\(role)")
            for spec in testSpecs {
                let t = tensors[spec.name] ?? []
                let hex = tensorBytes(arena, buffer, spec.name).map { String(format: "%02x", $0) }.joined()
                #expect(t.count == 3 && t[0] as? String == "<f4" && t[1] as? [Int] == spec.shape && t[2] as? String == hex,
                        "\(role)/\(spec.name) differs as read by h5py")
            }
        }
        check(out["params"], arena.params, "params")
        let state = out["state"] as? [String: Any] ?? [:]
        for slot in adamSlots { check(state[slot], arena.slot(slot), slot) }

        // Flip one byte of /state/exp_avg_sq/emb.weight: the snippet must refuse, naming it.
        var bytes = try readBytes(path)
        let at = try #require(offset(of: tensorBytes(arena, arena.slot("exp_avg_sq"), "emb.weight"), in: bytes))
        bytes[at + 100] ^= 0x01
        try writeBytes(bytes, path)
        let bad = try python(snippet + "\nimport sys\nload_checkpoint(sys.argv[1])\n", [path])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("ValueError") && bad.stderr.contains("/state/exp_avg_sq/emb.weight"), "\(bad.stderr)")
    }
}
