/* Unit tests for server/rpc/utf8_fields.c, on descriptor.proto's messages,
 * which have strings at every depth, repeated fields and nested messages. */
#include "tw_check.h"

#include "google/protobuf/descriptor.pb-c.h"
#include "rpc/utf8_fields.h"

START_TEST(valid_strings_pass)
{
    Google__Protobuf__DescriptorProto m = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    m.name = "Task";
    char path[128] = "";
    ck_assert(tw_utf8_fields_valid(&m.base, path, sizeof path));
    ck_assert_str_eq(path, "");
}
END_TEST

START_TEST(the_first_bad_string_is_named_with_its_path)
{
    Google__Protobuf__DescriptorProto a = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__DescriptorProto b = GOOGLE__PROTOBUF__DESCRIPTOR_PROTO__INIT;
    Google__Protobuf__FieldDescriptorProto f = GOOGLE__PROTOBUF__FIELD_DESCRIPTOR_PROTO__INIT;
    a.name = "Fine";
    b.name = "AlsoFine";
    f.name = "bad\xc3\x28";
    Google__Protobuf__FieldDescriptorProto *fields[] = {&f};
    b.n_field = 1;
    b.field = fields;
    Google__Protobuf__DescriptorProto *messages[] = {&a, &b};
    Google__Protobuf__FileDescriptorProto file = GOOGLE__PROTOBUF__FILE_DESCRIPTOR_PROTO__INIT;
    file.name = "x.proto";
    file.n_message_type = 2;
    file.message_type = messages;
    char path[128] = "";
    ck_assert(!tw_utf8_fields_valid(&file.base, path, sizeof path));
    ck_assert_str_eq(path, "message_type[1].field[0].name");

    const char *deps[] = {"ok.proto", "\xff.proto"};
    f.name = "fixed";
    file.n_dependency = 2;
    file.dependency = (char **)deps;
    path[0] = '\0';
    ck_assert(!tw_utf8_fields_valid(&file.base, path, sizeof path));
    ck_assert_str_eq(path, "dependency[1]");
}
END_TEST

Suite *tw_test_suite(void)
{
    Suite *s = suite_create("utf8_fields");
    TCase *tc = tcase_create("walk");
    tcase_add_test(tc, valid_strings_pass);
    tcase_add_test(tc, the_first_bad_string_is_named_with_its_path);
    suite_add_tcase(s, tc);
    return s;
}
