/*
 * Kona-CXL: -device kona-cxl, a CXL type-3 memory expander for studying
 * disaggregated-memory runtimes (Kona, ASPLOS'21).
 *
 * The device is a subclass of cxl-type3 so that the guest's stock CXL
 * drivers enumerate it and can build a RAM region on it.  cxl-type3 decodes
 * every guest access of its volatile media into an address space rooted at
 * the media backend's memory region; we overlay that region with an I/O
 * region of the same size, so every guest load and store of the media runs
 * through kona_media_read/write, which keep line-exact dirty state.
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include "qemu/osdep.h"
#include "qemu/units.h"
#include "qapi/error.h"
#include "qom/object_interfaces.h"
#include "hw/pci/pci_bridge.h"
#include "hw/qdev-properties.h"
#include "system/hostmem.h"
#include "hw/cxl/cxl.h"
#include "kona-cxl.h"
#include "trace.h"

static uint64_t kona_media_read(void *opaque, hwaddr addr, unsigned size)
{
    KonaCxlState *s = opaque;
    uint64_t val = ldn_le_p(s->media + addr, size);

    s->stats[KONA_DEV_STAT_READS]++;
    s->stats[KONA_DEV_STAT_READ_BYTES] += size;
    trace_kona_media_read(addr, size, val);
    return val;
}

static void kona_media_write(void *opaque, hwaddr addr, uint64_t val,
                             unsigned size)
{
    KonaCxlState *s = opaque;
    uint64_t added;

    stn_le_p(s->media + addr, size, val);
    added = kona_dirty_mark(&s->lines, addr, size);
    s->stats[KONA_DEV_STAT_WRITES]++;
    s->stats[KONA_DEV_STAT_WRITE_BYTES] += size;
    s->stats[KONA_DEV_STAT_LINES_DIRTIED] += added;
    trace_kona_media_write(addr, size, val, added);
}

static const MemoryRegionOps kona_media_ops = {
    .read = kona_media_read,
    .write = kona_media_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    /* Whatever the CXL window forwards: 1..8 bytes at any alignment. */
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
        .unaligned = true,
    },
};

/*
 * The guest can only reach the media through an HDM decoder of a CXL port,
 * so the device must sit below a CXL root port or switch downstream port.
 */
static bool kona_check_bus(PCIDevice *pci_dev, Error **errp)
{
    PCIBus *bus = pci_get_bus(pci_dev);
    PCIDevice *port = pci_bridge_get_device(bus);

    if (port && (object_dynamic_cast(OBJECT(port), "cxl-rp") ||
                 object_dynamic_cast(OBJECT(port), TYPE_CXL_DSP))) {
        return true;
    }
    error_setg(errp, "kona-cxl: property 'bus' must name a CXL root port "
               "(cxl-rp) or switch downstream port (cxl-downstream); "
               "bus '%s' is not one", BUS(bus)->name);
    return false;
}

static bool kona_check_properties(KonaCxlState *s, Error **errp)
{
    CXLType3Dev *ct3d = CXL_TYPE3(s);

    if (ct3d->hostmem || ct3d->hostvmem || ct3d->hostpmem || ct3d->lsa ||
        ct3d->dc.num_regions) {
        error_setg(errp, "kona-cxl: properties 'memdev', 'volatile-memdev', "
                   "'persistent-memdev', 'lsa' and 'num-dc-regions' are not "
                   "supported: kona-cxl provides its own volatile media, "
                   "sized by property 'size'");
        return false;
    }
    if (s->size == 0) {
        error_setg(errp, "kona-cxl: property 'size' must be set "
                   "(e.g. size=256M)");
        return false;
    }
    if (s->size % KONA_SIZE_ALIGN) {
        error_setg(errp, "kona-cxl: property 'size' (%" PRIu64 ") must be a "
                   "multiple of 256 MiB, the CXL HDM decoder granularity",
                   s->size);
        return false;
    }
    if (s->size > KONA_SIZE_MAX) {
        error_setg(errp, "kona-cxl: property 'size' (%" PRIu64 ") exceeds "
                   "the maximum of %" PRIu64 " bytes", s->size,
                   (uint64_t)KONA_SIZE_MAX);
        return false;
    }
    return true;
}

/*
 * cxl-type3 needs a memory backend for its volatile media.  Ours is a child
 * object that no one else can map; MAP_NORESERVE because only the pages the
 * guest writes are ever touched.
 */
static bool kona_create_media_backend(KonaCxlState *s, Error **errp)
{
    Object *backend = object_new(TYPE_MEMORY_BACKEND_RAM);

    if (!object_property_set_uint(backend, "size", s->size, errp) ||
        !object_property_set_bool(backend, "reserve", false, errp) ||
        !object_property_set_bool(backend,
                                  "x-use-canonical-path-for-ramblock-id",
                                  true, errp)) {
        object_unref(backend);
        return false;
    }
    object_property_add_child(OBJECT(s), "media", backend);
    object_unref(backend);
    if (!user_creatable_complete(USER_CREATABLE(backend), errp)) {
        object_unparent(backend);
        return false;
    }
    s->media_backend = MEMORY_BACKEND(backend);
    CXL_TYPE3(s)->hostvmem = s->media_backend;
    return true;
}

static void kona_destroy_media_backend(KonaCxlState *s)
{
    if (s->media_backend) {
        CXL_TYPE3(s)->hostvmem = NULL;
        object_unparent(OBJECT(s->media_backend));
        s->media_backend = NULL;
    }
}

static void kona_cxl_realize(PCIDevice *pci_dev, Error **errp)
{
    ERRP_GUARD();
    KonaCxlState *s = KONA_CXL(pci_dev);
    KonaCxlClass *kc = KONA_CXL_GET_CLASS(pci_dev);
    MemoryRegion *backend_mr;

    if (!kona_check_bus(pci_dev, errp) || !kona_check_properties(s, errp) ||
        !kona_create_media_backend(s, errp)) {
        return;
    }

    kc->parent_realize(pci_dev, errp);
    if (*errp) {
        kona_destroy_media_backend(s);
        return;
    }

    backend_mr = host_memory_backend_get_memory(s->media_backend);
    s->media = memory_region_get_ram_ptr(backend_mr);
    kona_dirty_init(&s->lines, s->size);
    memory_region_init_io(&s->media_io, OBJECT(s), &kona_media_ops, s,
                          "kona-media", s->size);
    memory_region_add_subregion_overlap(backend_mr, 0, &s->media_io, 1);

    memory_region_init_io(&s->regs, OBJECT(s), &kona_regs_ops, s,
                          "kona-regs", KONA_REGS_SIZE);
    pci_register_bar(pci_dev, KONA_REGS_BAR, PCI_BASE_ADDRESS_SPACE_MEMORY,
                     &s->regs);
    trace_kona_realize(s->size);
}

static void kona_cxl_exit(PCIDevice *pci_dev)
{
    KonaCxlState *s = KONA_CXL(pci_dev);
    KonaCxlClass *kc = KONA_CXL_GET_CLASS(pci_dev);

    memory_region_del_subregion(
        host_memory_backend_get_memory(s->media_backend), &s->media_io);
    object_unparent(OBJECT(&s->media_io));
    kona_dirty_destroy(&s->lines);
    kc->parent_exit(pci_dev);
    kona_destroy_media_backend(s);
}

static const Property kona_cxl_props[] = {
    DEFINE_PROP_SIZE("size", KonaCxlState, size, 0),
};

static void kona_cxl_class_init(ObjectClass *oc, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(oc);
    PCIDeviceClass *pc = PCI_DEVICE_CLASS(oc);
    KonaCxlClass *kc = KONA_CXL_CLASS(oc);

    kc->parent_realize = pc->realize;
    kc->parent_exit = pc->exit;
    pc->realize = kona_cxl_realize;
    pc->exit = kona_cxl_exit;

    dc->desc = "Kona CXL memory expander (disaggregated memory)";
    device_class_set_props(dc, kona_cxl_props);
    kona_cxl_stats_add_properties(oc);
}

static const TypeInfo kona_cxl_info = {
    .name = TYPE_KONA_CXL,
    .parent = TYPE_CXL_TYPE3,
    .instance_size = sizeof(KonaCxlState),
    .class_size = sizeof(KonaCxlClass),
    .class_init = kona_cxl_class_init,
};

static void kona_cxl_register_types(void)
{
    type_register_static(&kona_cxl_info);
}

type_init(kona_cxl_register_types)
