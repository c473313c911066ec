/* imap_structure.c - owns the MIME structure of a stored message as the
 * class rules see it: BODYSTRUCTURE and the two header fields they need
 * (Content-Class, X-MS-TNEF-Correlator), turned into a mime_message tree
 * whose part bodies are fetched only when a rule asks (imap_fetch_part). */
#include "imap.h"
#include "imap_p.h"
#include "util/mime_tree.h"
#include "util/names.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *lower_dup(const char *s)
{
	char *out = strdup(s ? s : "");

	for (char *p = out; p && *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

static int copy_params(struct mime_param **out, size_t *count, const struct mailimap_body_fld_param *params)
{
	size_t n = params && params->pa_list ? (size_t)clist_count(params->pa_list) : 0;

	if (n == 0)
		return 0;
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return -ENOMEM;
	for (clistiter *it = clist_begin(params->pa_list); it; it = clist_next(it)) {
		const struct mailimap_single_body_fld_param *sp = clist_content(it);
		struct mime_param *mp = &(*out)[*count];

		mp->name = lower_dup(sp->pa_name);
		mp->value = strdup(sp->pa_value ? sp->pa_value : "");
		if (!mp->name || !mp->value) {
			free(mp->name);
			free(mp->value);
			return -ENOMEM;
		}
		(*count)++;
	}
	return 0;
}

static int add_params(struct mime_part *p, const struct mailimap_body_fld_param *params)
{
	return copy_params(&p->params, &p->nparams, params);
}

static const char *encoding_name(const struct mailimap_body_fld_enc *enc)
{
	static const char *const names[] = { "7bit", "8bit", "binary", "base64", "quoted-printable" };

	if (!enc)
		return "7bit";
	if (enc->enc_type >= 0 && enc->enc_type <= MAILIMAP_BODY_FLD_ENC_QUOTED_PRINTABLE)
		return names[enc->enc_type];
	return enc->enc_value ? enc->enc_value : "7bit";
}

static const char *basic_type(const struct mailimap_media_basic *m)
{
	switch (m->med_type) {
	case MAILIMAP_MEDIA_BASIC_APPLICATION:
		return "application";
	case MAILIMAP_MEDIA_BASIC_AUDIO:
		return "audio";
	case MAILIMAP_MEDIA_BASIC_IMAGE:
		return "image";
	case MAILIMAP_MEDIA_BASIC_MESSAGE:
		return "message";
	case MAILIMAP_MEDIA_BASIC_VIDEO:
		return "video";
	default:
		return m->med_basic_type ? m->med_basic_type : "application";
	}
}

static char *dsp_filename(const struct mailimap_body_fld_dsp *dsp)
{
	if (!dsp || !dsp->dsp_attributes || !dsp->dsp_attributes->pa_list)
		return NULL;
	for (clistiter *it = clist_begin(dsp->dsp_attributes->pa_list); it; it = clist_next(it)) {
		const struct mailimap_single_body_fld_param *sp = clist_content(it);

		if (sp->pa_name && strcasecmp(sp->pa_name, "filename") == 0 && sp->pa_value)
			return strdup(sp->pa_value);
	}
	return NULL;
}

static int build(struct mime_part *p, const struct mailimap_body *b, const char *id, int depth,
		 size_t *budget);

/* The body of an attached message: a multipart's children are SECTION.1
 * ..., a single part is SECTION.1 itself. */
static int attached_body(struct mime_part *p, const struct mailimap_body *body, int depth, size_t *budget)
{
	char id[256];

	if (!body || depth + 1 > MIME_MAX_DEPTH || *budget == 0)
		return 0; /* past the limits: not split (mime_tree.h) */
	p->message = calloc(1, sizeof(*p->message));
	if (!p->message)
		return -ENOMEM;
	if (body->bd_type == MAILIMAP_BODY_MPART)
		snprintf(id, sizeof(id), "%s", p->part_id);
	else
		snprintf(id, sizeof(id), "%s.1", p->part_id);
	return build(p->message, body, id, depth + 1, budget);
}

static int one_part(struct mime_part *p, const struct mailimap_body_type_1part *b, int depth, size_t *budget)
{
	const struct mailimap_body_fields *fields = NULL;
	const char *type = "text", *subtype = "plain";

	switch (b->bd_type) {
	case MAILIMAP_BODY_TYPE_1PART_BASIC:
		type = basic_type(b->bd_data.bd_type_basic->bd_media_basic);
		subtype = b->bd_data.bd_type_basic->bd_media_basic->med_subtype;
		fields = b->bd_data.bd_type_basic->bd_fields;
		break;
	case MAILIMAP_BODY_TYPE_1PART_TEXT:
		subtype = b->bd_data.bd_type_text->bd_media_text;
		fields = b->bd_data.bd_type_text->bd_fields;
		break;
	case MAILIMAP_BODY_TYPE_1PART_MSG:
		type = "message";
		subtype = "rfc822";
		fields = b->bd_data.bd_type_msg->bd_fields;
		break;
	default:
		break;
	}
	p->type = lower_dup(type);
	p->subtype = lower_dup(subtype);
	p->encoding = lower_dup(encoding_name(fields ? fields->bd_encoding : NULL));
	if (fields)
		p->octets = fields->bd_size;
	if (b->bd_ext_1part && b->bd_ext_1part->bd_disposition) {
		const struct mailimap_body_fld_dsp *dsp = b->bd_ext_1part->bd_disposition;

		p->disposition_filename = dsp_filename(dsp);
		if (copy_params(&p->dparams, &p->ndparams, dsp->dsp_attributes) < 0)
			return -ENOMEM;
	}
	if (!p->type || !p->subtype || !p->encoding ||
	    add_params(p, fields ? fields->bd_parameter : NULL) < 0)
		return -ENOMEM;
	if (b->bd_type == MAILIMAP_BODY_TYPE_1PART_MSG)
		return attached_body(p, b->bd_data.bd_type_msg->bd_body, depth, budget);
	return 0;
}

static int multi_part(struct mime_part *p, const struct mailimap_body_type_mpart *b, const char *id,
		      int depth, size_t *budget)
{
	size_t n = (size_t)clist_count(b->bd_list), i = 0;
	char child_id[256];
	int r;

	p->type = strdup("multipart");
	p->subtype = lower_dup(b->bd_media_subtype);
	if (!p->type || !p->subtype)
		return -ENOMEM;
	if (b->bd_ext_mpart && (r = add_params(p, b->bd_ext_mpart->bd_parameter)) < 0)
		return r;
	p->children = n ? calloc(n, sizeof(*p->children)) : NULL;
	if (n && !p->children)
		return -ENOMEM;
	for (clistiter *it = clist_begin(b->bd_list); it; it = clist_next(it), i++) {
		if (depth + 1 > MIME_MAX_DEPTH || *budget == 0)
			break; /* past the limits: not split (mime_tree.h) */
		if (*id)
			snprintf(child_id, sizeof(child_id), "%s.%zu", id, i + 1);
		else
			snprintf(child_id, sizeof(child_id), "%zu", i + 1);
		p->nchildren++;
		r = build(&p->children[i], clist_content(it), child_id, depth + 1, budget);
		if (r < 0)
			return r;
	}
	return 0;
}

static int build(struct mime_part *p, const struct mailimap_body *b, const char *id, int depth,
		 size_t *budget)
{
	if (depth > MIME_MAX_DEPTH || (*budget)-- == 0)
		return -E2BIG;
	/* a single-part message's body is section 1 */
	p->part_id = strdup(*id ? id : "1");
	if (!p->part_id)
		return -ENOMEM;
	if (b->bd_type == MAILIMAP_BODY_MPART && b->bd_data.bd_body_mpart)
		return multi_part(p, b->bd_data.bd_body_mpart, id, depth, budget);
	if (b->bd_type == MAILIMAP_BODY_1PART && b->bd_data.bd_body_1part)
		return one_part(p, b->bd_data.bd_body_1part, depth, budget);
	return -EINVAL;
}

static void part_free(struct mime_part *p)
{
	for (size_t i = 0; i < p->nchildren; i++)
		part_free(&p->children[i]);
	for (size_t i = 0; i < p->nparams; i++) {
		free(p->params[i].name);
		free(p->params[i].value);
	}
	for (size_t i = 0; i < p->ndparams; i++) {
		free(p->dparams[i].name);
		free(p->dparams[i].value);
	}
	if (p->message)
		part_free(p->message);
	free(p->message);
	free(p->dparams);
	free(p->children);
	free(p->params);
	free(p->type);
	free(p->subtype);
	free(p->encoding);
	free(p->disposition_filename);
	free(p->part_id);
	memset(p, 0, sizeof(*p));
}

void imap_structure_free(struct mime_message *m)
{
	part_free(&m->root);
	free(m->content_class);
	free(m->tnef_correlator);
	memset(m, 0, sizeof(*m));
}

static struct mailimap_fetch_type *structure_fetch_type(void)
{
	static const char *const fields[] = { "Content-Class", "X-MS-TNEF-Correlator", NULL };
	struct mailimap_fetch_type *ft = mailimap_fetch_type_new_fetch_att_list_empty();

	if (!imap_add_att(ft, mailimap_fetch_att_new_uid()) ||
	    !imap_add_att(ft, mailimap_fetch_att_new_bodystructure()) ||
	    !imap_add_att(ft, imap_header_fields_att(fields)))
		return NULL;
	return ft;
}

static int take_structure(const struct mailimap_msg_att *att, uint32_t uid, struct mime_message *out)
{
	const struct mailimap_body *body = NULL;
	size_t budget = MIME_MAX_PARTS;
	struct imap_meta m;

	imap_meta_from_att(att, &m);
	if (m.uid != uid)
		return -ENOENT;
	for (clistiter *it = clist_begin(att->att_list); it; it = clist_next(it)) {
		const struct mailimap_msg_att_item *item = clist_content(it);

		if (item->att_type == MAILIMAP_MSG_ATT_ITEM_STATIC &&
		    item->att_data.att_static->att_type == MAILIMAP_MSG_ATT_BODYSTRUCTURE)
			body = item->att_data.att_static->att_data.att_bodystructure;
	}
	if (!body)
		return -EIO;
	if (m.headers && m.headers_len) {
		out->content_class = names_header_field(m.headers, m.headers_len, "Content-Class");
		out->tnef_correlator = names_header_field(m.headers, m.headers_len, "X-MS-TNEF-Correlator");
	}
	return build(&out->root, body, "", 0, &budget);
}

int imap_fetch_structure(struct imap_session *s, uint32_t uid, struct mime_message *out)
{
	struct mailimap_fetch_type *ft = structure_fetch_type();
	struct mailimap_set *set = mailimap_set_new_single(uid);
	clist *res = NULL;
	int r = -ENOENT;

	memset(out, 0, sizeof(*out));
	if (!ft || !set) {
		imap_fetch_request_free(ft, set);
		return -ENOMEM;
	}
	r = mailimap_uid_fetch(s->imap, set, ft, &res);
	imap_fetch_request_free(ft, set);
	if (r != MAILIMAP_NO_ERROR)
		return imap_map_error(s, r, "UID FETCH BODYSTRUCTURE");
	r = -ENOENT;
	for (clistiter *it = clist_begin(res); it && r == -ENOENT; it = clist_next(it))
		r = take_structure(clist_content(it), uid, out);
	mailimap_fetch_list_free(res);
	if (r < 0)
		imap_structure_free(out);
	return r;
}
