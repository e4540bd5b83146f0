import Foundation
import Testing
@testable import DecoupledHDF5

/// Files we write are read by h5py with identical values, and files h5py writes are read by us.
@Suite struct InteropTests {
    @Test func h5pyReadsOurFiles() throws {
        let dir = TempDir()
        let path = dir.file("ours.h5")
        var expected: [String: [Double]] = [:]
        do {
            let f = try H5File(path, mode: .create)
            func put<T: H5Scalar & BinaryFloatingPoint>(_ t: T.Type, _ name: String, _ o: H5DatasetOptions) throws {
                let v = sampleValues(T.self, count: 30)
                try f.createDataset(name, values: v, shape: [6, 5], options: o)
                expected[name] = v.map { Double($0) }
            }
            func putInt<T: H5Scalar & BinaryInteger>(_ t: T.Type, _ name: String, _ o: H5DatasetOptions) throws {
                let v = sampleValues(T.self, count: 30)
                try f.createDataset(name, values: v, shape: [6, 5], options: o)
                expected[name] = v.map { Double($0) }
            }
            let gz = H5DatasetOptions(chunkShape: [4, 5], gzipLevel: 5, shuffle: true, fletcher32: true)
            try put(Float.self, "f32", H5DatasetOptions())
            try put(Double.self, "grp/f64", gz)
            try putInt(Int32.self, "i32", H5DatasetOptions(chunkShape: [2, 2]))
            try putInt(UInt8.self, "u8", gz)
            try putInt(Int16.self, "i16", gz)
            // int64/uint64 extremes do not survive a trip through JSON doubles; keep them in range.
            let i64: [Int64] = [-(1 << 52), -3, 0, 7, 1 << 52, 123_456_789_012]
            try f.createDataset("i64", values: i64, options: H5DatasetOptions(chunkShape: [4], gzipLevel: 5, shuffle: true))
            expected["i64"] = i64.map { Double($0) }
            let u64: [UInt64] = [0, 1, 1 << 52, 99]
            try f.createDataset("u64", values: u64, options: H5DatasetOptions(chunkShape: [2], fletcher32: true))
            expected["u64"] = u64.map { Double($0) }
            try f.setAttribute("title", "Découpled ✓")
            try f.setAttribute("steps", Int64(12345))
            try f.setAttribute("lr", 1e-3)
            try f.setAttribute("betas", [0.9, 0.999])
            try f.close()
        }
        let out = try python("""
        import h5py, json, sys, numpy as np
        f = h5py.File(sys.argv[1], "r")
        res = {"datasets": {}, "attrs": {}}
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                res["datasets"][name] = {"dtype": str(obj.dtype), "shape": list(obj.shape),
                    "chunks": list(obj.chunks) if obj.chunks else None, "compression": obj.compression,
                    "shuffle": obj.shuffle, "fletcher32": obj.fletcher32,
                    "values": [repr(float(v)) for v in np.asarray(obj[()]).ravel()]}
        f.visititems(visit)
        for k, v in f.attrs.items():
            res["attrs"][k] = v if isinstance(v, str) else np.asarray(v).tolist()
        print(json.dumps(res))
        """, [path])
        let r = try #require(try json(out) as? [String: Any])
        let ds = try #require(r["datasets"] as? [String: [String: Any]])
        let dtypes = ["f32": "float32", "grp/f64": "float64", "i32": "int32", "u8": "uint8", "i16": "int16", "i64": "int64", "u64": "uint64"]
        for (name, values) in expected {
            let d = try #require(ds[name], "h5py does not see \(name)")
            #expect(d["dtype"] as? String == dtypes[name], "\(name)")
            // Values travel as Python repr strings: exact, unlike JSON number parsing.
            #expect((d["values"] as? [String])?.map { Double($0) } == values, "\(name) values differ in h5py")
        }
        #expect(ds["grp/f64"]?["compression"] as? String == "gzip")
        #expect(ds["grp/f64"]?["shuffle"] as? Bool == true)
        #expect(ds["grp/f64"]?["fletcher32"] as? Bool == true)
        #expect(ds["i32"]?["chunks"] as? [Int] == [2, 2])
        #expect(ds["f32"]?["chunks"] is NSNull)
        let attrs = try #require(r["attrs"] as? [String: Any])
        #expect(attrs["title"] as? String == "Découpled ✓")
        #expect(attrs["steps"] as? Int == 12345)
        #expect(attrs["lr"] as? Double == 1e-3)
        #expect(attrs["betas"] as? [Double] == [0.9, 0.999])
    }

    @Test func weReadH5pyFiles() throws {
        let dir = TempDir()
        let path = dir.file("theirs.h5")
        let out = try python("""
        import h5py, json, sys, numpy as np
        rng = np.random.default_rng(7)
        res = {}
        with h5py.File(sys.argv[1], "w") as f:
            specs = {
                "f32": (np.float32, {}), "f64": (np.float64, {"chunks": (3, 4), "compression": "gzip", "shuffle": True}),
                "i32": (np.int32, {"chunks": True, "fletcher32": True}), "i64": (np.int64, {"compression": "gzip", "compression_opts": 9}),
                "u8": (np.uint8, {"chunks": (5, 2), "compression": "gzip", "shuffle": True, "fletcher32": True}),
                "be_f64": (np.dtype(">f8"), {}), "be_i32": (np.dtype(">i4"), {"chunks": (2, 4)}),
            }
            for name, (dt, kw) in specs.items():
                a = (rng.standard_normal((11, 4)) * 1000).astype(dt)
                f.create_dataset("data/" + name, data=a, **kw)
                res[name] = [repr(float(v)) for v in a.ravel()]
            f.attrs["num_classes"] = 10
            f.attrs["scale"] = np.float32(1 / 255)
            f.attrs["source"] = "h5py vlen str ✓"
            f.attrs["fixed"] = np.bytes_(b"fixed-bytes")
            f.attrs["arr"] = np.arange(4, dtype=np.int16)
        print(json.dumps(res))
        """, [path])
        // Values travel as Python repr strings: exact, unlike JSON number parsing.
        let strings = try #require(try json(out) as? [String: [String]])
        let expected = strings.mapValues { $0.map { Double($0)! } }
        let f = try H5File(path)
        let g = try f.openGroup("data")
        #expect(try g.childNames().sorted() == expected.keys.sorted())
        for (name, values) in expected {
            let d = try g.openDataset(name)
            #expect(try d.shape() == [11, 4])
            let got: [Double]
            switch try d.elementType() {
            case .float32: got = try d.read(as: Float.self).map(Double.init)
            case .float64: got = try d.read(as: Double.self)
            case .int32: got = try d.read(as: Int32.self).map(Double.init)
            case .int64: got = try d.read(as: Int64.self).map(Double.init)
            case .uint8: got = try d.read(as: UInt8.self).map(Double.init)
            case let t: Issue.record("unexpected type \(t) for \(name)"); continue
            }
            #expect(got == values, "\(name)")
            // Hyperslab of h5py's chunked/compressed data.
            let slab = try d.read(start: [2, 1], count: [5, 2], as: Double.self, converting: true)
            var want: [Double] = []
            for r in 2..<7 { for c in 1..<3 { want.append(values[r * 4 + c]) } }
            #expect(slab == want, "\(name) hyperslab")
        }
        #expect(try f.integerAttribute("num_classes") == 10)
        #expect(try f.doubleAttribute("scale") == Double(Float(1.0 / 255.0)))
        #expect(try f.stringAttribute("source") == "h5py vlen str ✓")
        #expect(try f.stringAttribute("fixed") == "fixed-bytes")
        #expect(try f.numericAttribute("arr", as: Int.self) == [0, 1, 2, 3])
    }

    /// A dataset file written by h5py alone (no project code) opens, validates and streams.
    @Test func h5pyWrittenDatasetFileStreams() throws {
        let dir = TempDir()
        let path = dir.file("h5py-dataset.h5")
        _ = try python("""
        import h5py, sys, numpy as np
        with h5py.File(sys.argv[1], "w") as f:
            for split, n in (("train", 300), ("test", 50)):
                x = (np.arange(n * 12).reshape(n, 3, 4) % 256).astype(np.uint8)
                f.create_dataset(split + "/x", data=x, chunks=True, compression="gzip")
                f.create_dataset(split + "/y", data=np.arange(n) % 3)
            f.attrs["num_classes"] = 3
            f.attrs["scale"] = 0.5
            f.attrs["source"] = "synthetic"
            f.attrs["license"] = "CC0"
        """, [path])
        let ds = try DatasetFile(path: path)
        #expect(ds.sampleShape == [3, 4])
        #expect(ds.featureCount == 12)
        #expect(ds.trainCount == 300 && ds.testCount == 50)
        #expect(ds.scale == 0.5)
        let loader = try MinibatchLoader(file: ds, split: .train, batchSize: 64, seed: 1, bufferBytes: 1 << 20)
        var seen = Set<Int>()
        try loader.forEachBatch { b in
            for (k, i) in b.indices.enumerated() {
                seen.insert(i)
                #expect(b.labels[k] == Int32(i % 3))
                #expect(b.features[k * 12] == Float((i * 12) % 256) * 0.5)
            }
        }
        #expect(seen == Set(0..<300))
    }
}
